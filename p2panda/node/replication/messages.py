"""Replication messages (`../shared/spec/replication.md`): CBOR arrays, one per box-stream message (one or
more frames, see `transport.py`), at most `MAX_MESSAGE` bytes.

Checks on decode (R1…), each failure an `InvalidMessage` naming the value:
- R1 the message is one well-formed CBOR array and nothing after it;
- R2 its first item is a known type (0, 1, 2, 3, 10) and the array has that type's length;
- R3 every item has its type: uints within u64, bytes, text, bool; public keys are 32 bytes;
- R4 a target set is non-empty, sorted as the spec says and duplicate-free; schema ids parse;
- R5 an Entry carries an operation (aquadoggo crashed on a null one).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cbor2

from p2panda.entry import MAX_ENTRY_SIZE
from p2panda.node.errors import NodeError
from p2panda.node.publish import MAX_OPERATION_SIZE
from p2panda.schema import SchemaId, SystemSchema

__all__ = [
    "Announce",
    "EntryMessage",
    "Have",
    "InvalidMessage",
    "MAX_MESSAGE",
    "Message",
    "SyncDone",
    "SyncRequest",
    "decode_message",
    "encode_message",
    "sort_target",
]

PROTOCOL_VERSION = 1
# The largest message a node takes: an Entry message with the largest entry and operation a node accepts
# (CBOR: the array, its type, two byte-string headers: well under 64 bytes). A Have is split to stay smaller.
MAX_MESSAGE = MAX_ENTRY_SIZE + MAX_OPERATION_SIZE + 64
_U64 = 2**64 - 1
_SYSTEM_ORDER = [
    SystemSchema.SCHEMA_DEFINITION_V1,
    SystemSchema.SCHEMA_FIELD_DEFINITION_V1,
    SystemSchema.BLOB_V1,
    SystemSchema.BLOB_PIECE_V1,
]


class InvalidMessage(NodeError):
    """A replication message that breaks one of the checks R1-R5."""


@dataclass(frozen=True, slots=True)
class Announce:
    timestamp: int
    schema_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SyncRequest:
    session_id: int
    mode: int
    target: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EntryMessage:
    session_id: int
    entry: bytes
    operation: bytes


@dataclass(frozen=True, slots=True)
class SyncDone:
    session_id: int
    live_mode: bool


@dataclass(frozen=True, slots=True)
class Have:
    session_id: int
    heights: tuple[tuple[bytes, tuple[tuple[int, int], ...]], ...]  # (public key, ((log id, seq num), ...))


Message = Announce | SyncRequest | EntryMessage | SyncDone | Have


def _rank(schema_id: str) -> tuple[int, str, str]:
    parsed = SchemaId.parse(schema_id)
    for i, system in enumerate(_SYSTEM_ORDER):
        if parsed == SchemaId.system_schema(system):
            return (i, "", "")
    name, _, view = schema_id.rpartition("_")
    return (len(_SYSTEM_ORDER), name, view)


def sort_target(schema_ids: set[str] | frozenset[str] | list[str]) -> tuple[str, ...]:
    """A target set in the spec's order: system schemas first in their fixed order, then (name, view id)."""
    return tuple(sorted(set(schema_ids), key=_rank))


def encode_message(message: Message) -> bytes:
    match message:
        case Announce(timestamp, schema_ids):
            items: list[object] = [0, PROTOCOL_VERSION, timestamp, list(schema_ids)]
        case SyncRequest(session_id, mode, target):
            items = [1, session_id, mode, list(target)]
        case EntryMessage(session_id, entry, operation):
            items = [2, session_id, entry, operation]
        case SyncDone(session_id, live_mode):
            items = [3, session_id, live_mode]
        case Have(session_id, heights):
            items = [10, session_id, [[pk, [[log, seq] for log, seq in logs]] for pk, logs in heights]]
    return cbor2.dumps(items)


def _uint(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _U64:
        raise InvalidMessage(f"{what} must be a u64, got {value!r}")  # R3
    return value


def _target(value: object, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidMessage(f"{what} must be an array of schema ids, got {value!r}")
    try:
        ordered = sort_target(value)
    except Exception as exc:  # a schema id that does not parse
        raise InvalidMessage(f"{what} holds an invalid schema id: {exc}") from None
    if tuple(value) != ordered:
        raise InvalidMessage(f"{what} is not sorted and duplicate-free: {value!r}")  # R4
    return ordered


_LENGTHS = {0: 4, 1: 4, 2: 4, 3: 3, 10: 3}


def decode_message(frame: bytes) -> Message:
    stream = io.BytesIO(frame)
    try:
        items = cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise InvalidMessage(f"frame is not CBOR: {exc}") from None
    if stream.tell() != len(frame):
        raise InvalidMessage(f"{len(frame) - stream.tell()} bytes after the message")  # R1
    if not isinstance(items, list) or not items:
        raise InvalidMessage(f"a message is a non-empty array, got {items!r}")
    kind = items[0]
    if not isinstance(kind, int) or isinstance(kind, bool) or kind not in _LENGTHS:  # a list is not hashable
        raise InvalidMessage(f"unknown message type {kind!r}")  # R2
    if len(items) != _LENGTHS[kind]:
        raise InvalidMessage(f"message type {kind} has {_LENGTHS[kind]} items, got {len(items)}")
    if kind == 0:
        if items[1] != PROTOCOL_VERSION:
            raise InvalidMessage(f"protocol version {items[1]!r} is not {PROTOCOL_VERSION}")
        return Announce(_uint(items[2], "timestamp"), _target(items[3], "announced schema ids"))
    session = _uint(items[1], "session id")
    if kind == 1:
        mode = _uint(items[2], "mode")
        if mode != 0:
            raise InvalidMessage(f"sync mode {mode} is not log height (0)")
        target = _target(items[3], "target set")
        if not target:
            raise InvalidMessage("target set is empty")  # R4
        return SyncRequest(session, mode, target)
    if kind == 2:
        entry, operation = items[2], items[3]
        if operation is None:
            raise InvalidMessage("entry message without an operation")  # R5
        if not isinstance(entry, bytes) or not isinstance(operation, bytes):
            raise InvalidMessage("entry and operation must be byte strings")
        return EntryMessage(session, entry, operation)
    if kind == 3:
        if not isinstance(items[2], bool):
            raise InvalidMessage(f"live mode must be a bool, got {items[2]!r}")
        return SyncDone(session, items[2])
    heights = items[2]
    if not isinstance(heights, list):
        raise InvalidMessage(f"have must list authors, got {heights!r}")
    out = []
    for author in heights:
        if not (
            isinstance(author, list) and len(author) == 2 and isinstance(author[0], bytes) and len(author[0]) == 32
        ):
            raise InvalidMessage(f"have entry {author!r} is not [public key (32 bytes), logs]")
        if not isinstance(author[1], list):
            raise InvalidMessage(f"logs of {author[0].hex()} must be an array")
        logs = []
        for log in author[1]:
            if not (isinstance(log, list) and len(log) == 2):
                raise InvalidMessage(f"log height {log!r} is not [log id, seq num]")
            logs.append((_uint(log[0], "log id"), _uint(log[1], "seq num")))
        out.append((author[0], tuple(logs)))
    return Have(session, tuple(out))
