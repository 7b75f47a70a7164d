"""Fuzz targets: every decoder that reads bytes a peer (or a stolen file) controls.

The property for each target: decoding arbitrary bytes either succeeds or raises the decoder's own typed
error (`allowed`); anything else (a `TypeError`, `KeyError`, `OverflowError`, `MemoryError`, a binding
panic surfacing as `InternalError`...) is a crash. The runners (`run.py` under atheris, coverage-guided;
`test_fuzz.py` for the short run in the test suite) also bound time per input and memory.

Targets that take structured values (document fields) decode the fuzz bytes as CBOR first and turn 34-byte
byte strings that look like a hash into `Relation`s, so the fuzzer reaches the checks behind the types.
The transport targets go through `adapters.py`, the one place that knows the transport's internals.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import cbor2

from keygroups.changes import change_of
from keygroups.errors import KeyGroupError
from keygroups.schemas import BUNDLE_PATH as KEY_GROUP_BUNDLE
from p2panda.entry import decode_entry
from p2panda.entry.errors import EntryError
from p2panda.ids import DocumentId
from p2panda.node.bundle import BundleError, decode_bundle
from p2panda.node.replication.messages import (
    Announce,
    EntryMessage,
    Have,
    InvalidMessage,
    SyncDone,
    SyncRequest,
    decode_message,
    encode_message,
)
from p2panda.node.transport import HandshakeFailed, StreamClosed
from p2panda.operation import decode_operation
from p2panda.operation.errors import OperationError
from p2panda.operation.value import OperationValue, Relation
from p2panda.schema import SchemaId
from p2panda.schema.errors import SchemaError
from secret_group.documents import CommitDoc, EnvelopeDoc, GroupDoc, KeyPackageDoc
from secret_group.engine import _parse_handover
from secret_group.errors import MalformedDocument, SecretGroupError, TamperedCiphertext
from secret_group.mls import InternalError, MlsError, MlsMember
from secret_group.schemas import BUNDLE_PATH as SECRET_GROUP_BUNDLE
from secret_group.sealing import associated_data, open_sealed, seal
from tests.fuzz import adapters

__all__ = ["TARGETS", "Target", "UnexpectedError", "check"]

_ID = "0020" + "ab" * 32
_KEY = "cd" * 32


class UnexpectedError(AssertionError):
    """A decoder raised something other than its typed error."""


@dataclass(frozen=True, slots=True)
class Target:
    run: Callable[[bytes], object]
    allowed: tuple[type[Exception], ...]
    seeds: Callable[[], list[bytes]]
    forbidden: tuple[type[Exception], ...] = ()  # subclasses of `allowed` that are crashes all the same


def check(target: Target, data: bytes) -> None:
    """Run one input; raise `UnexpectedError` (from the original) unless it decodes or fails as allowed."""
    try:
        target.run(data)
    except target.forbidden as exc:
        raise UnexpectedError(f"{type(exc).__name__}: {exc}") from exc
    except target.allowed:
        pass
    except Exception as exc:
        raise UnexpectedError(f"{type(exc).__name__}: {exc}") from exc


@functools.cache
def _bundle_pairs() -> list[tuple[bytes, bytes]]:
    return decode_bundle(KEY_GROUP_BUNDLE.read_bytes()) + decode_bundle(SECRET_GROUP_BUNDLE.read_bytes())


def _fields_of(data: bytes) -> Mapping[str, OperationValue] | None:
    """Fuzz bytes as document fields: a CBOR map (None when they are not one; also a valid input)."""
    try:
        value = cbor2.loads(data)
    except Exception:  # not fields at all: nothing of ours runs on it
        return None
    if not isinstance(value, dict):
        return None

    def convert(v: object) -> object:
        if isinstance(v, bytes) and len(v) == 34 and v[:2] == b"\x00\x20":
            return Relation(DocumentId(v))
        return v

    return {str(k): convert(v) for k, v in value.items()}  # type: ignore[misc]


def _fields_seed(fields: Mapping[str, object]) -> bytes:
    return cbor2.dumps({k: v.document_id.to_bytes() if isinstance(v, Relation) else v for k, v in fields.items()})


# --- p2panda ---------------------------------------------------------------------------------------------


def _entry_seeds() -> list[bytes]:
    return [entry for entry, _ in _bundle_pairs()[:8]]


def _operation_seeds() -> list[bytes]:
    return [operation for _, operation in _bundle_pairs()[:8]]


def _message_seeds() -> list[bytes]:
    entry, operation = _bundle_pairs()[0]
    schema = str(SchemaId.parse("schema_definition_v1"))
    return [
        encode_message(m)
        for m in (
            Announce(1, (schema,)),
            SyncRequest(7, 0, (schema,)),
            EntryMessage(7, entry, operation),
            SyncDone(7, True),
            Have(7, ((bytes(32), ((0, 3), (1, 9))),)),
        )
    ]


def _bundle_seeds() -> list[bytes]:
    return [KEY_GROUP_BUNDLE.read_bytes()[:4096]]


def _schema_id(data: bytes) -> object:
    return SchemaId.parse(data.decode("utf-8", "replace"))


# --- key groups and secret groups -----------------------------------------------------------------------


def _change(data: bytes) -> object:
    fields = _fields_of(data)
    return None if fields is None else change_of(_ID, _KEY, fields)


def _change_seeds() -> list[bytes]:
    fields = {
        "group": Relation(DocumentId.from_hex(_ID)),
        "action": "add",
        "member": f"key:{_KEY}",
        "level": "write",
        "previous": _ID,
        "cuts": "0:4 1:2",
    }
    return [_fields_seed(fields), _fields_seed({**fields, "action": "remove", "level": ""})]


def _documents(data: bytes) -> object:
    fields = _fields_of(data)
    if fields is None:
        return None
    for kind in (KeyPackageDoc, GroupDoc, CommitDoc, EnvelopeDoc):
        try:
            kind.parse(_ID, _KEY, fields)
        except MalformedDocument:
            continue
    return None


def _document_seeds() -> list[bytes]:
    group = Relation(DocumentId.from_hex(_ID))
    return [
        _fields_seed({"key_package": b"kp", "last_resort": False}),
        _fields_seed({"owner": group, "mode": "history"}),
        _fields_seed(
            {
                "group": group,
                "parent": _ID,
                "epoch": 3,
                "commit": b"c",
                "welcome": b"w",
                "added": _KEY,
                "key_packages": _ID,
                "key_group_tips": _ID,
                "handover": b"h",
            }
        ),
        _fields_seed({"group": group, "epoch": 0, "ciphertext": b"x"}),
    ]


_SEAL_KEY = bytes(range(32))
_AAD = associated_data("envelope", _ID, 1, _KEY)


def _sealed(data: bytes) -> object:
    return open_sealed(_SEAL_KEY, data, _AAD, "fuzzed envelope")


def _handover(data: bytes) -> object:
    return _parse_handover(_ID, data)


def _handover_seeds() -> list[bytes]:
    return [cbor2.dumps({"name": "n", "secrets": [[0, bytes(32)]], "removed": [[_KEY, 2]]}, canonical=True)]


@functools.cache
def _mls_group() -> tuple[MlsMember, bytes, bytes]:
    """A member with a group of two, and a genuine application message of the other member to it."""
    alice, bob = MlsMember(bytes(range(32))), MlsMember(bytes(range(1, 33)))
    group = alice.create_group(bytes.fromhex(_ID))
    commit = group.add([bob.key_package()])
    group.merge_pending_commit()
    assert commit.welcome is not None
    message = bob.join(commit.welcome).encrypt(b"hello")
    alice.take_changes()
    return alice, bytes.fromhex(_ID), message


def _mls_message(data: bytes) -> object:
    member, group_id, _ = _mls_group()
    group = member.load_group(group_id)
    assert group is not None
    try:
        return group.process(data)
    finally:
        member.discard_changes()  # every input meets the same group state


def _mls_seeds() -> list[bytes]:
    return [_mls_group()[2]]


TARGETS: dict[str, Target] = {
    "entry": Target(decode_entry, (EntryError,), _entry_seeds),
    "operation": Target(decode_operation, (OperationError,), _operation_seeds),
    "replication_message": Target(decode_message, (InvalidMessage,), _message_seeds),
    "bundle": Target(decode_bundle, (BundleError,), _bundle_seeds),
    "schema_id": Target(_schema_id, (SchemaError,), lambda: [b"schema_definition_v1", b"chat_0020" + b"ab" * 32]),
    "transport_frames": Target(adapters.receive_messages, (StreamClosed,), adapters.frame_seeds),
    "handshake": Target(adapters.server_handshake, (HandshakeFailed, StreamClosed), adapters.handshake_seeds),
    "key_group_change": Target(_change, (KeyGroupError,), _change_seeds),
    "secret_group_documents": Target(_documents, (SecretGroupError,), _document_seeds),
    "sealed": Target(_sealed, (TamperedCiphertext,), lambda: [seal(_SEAL_KEY, b"plaintext", _AAD)]),
    "handover": Target(_handover, (MalformedDocument,), _handover_seeds),
    "mls_message": Target(_mls_message, (MlsError,), _mls_seeds, forbidden=(InternalError,)),
}


def _broken(data: bytes) -> object:
    """The runners' positive control: a decoder with a bug any fuzzer finds at once."""
    if data[:1] == b"K":
        empty: dict[str, int] = {}
        return empty["missing"]
    raise InvalidMessage(f"{data!r:.20} is refused")


# Registered only for `test_fuzz.py`, which shows that a crash stops a run and is reported.
BROKEN = Target(_broken, (InvalidMessage,), lambda: [b"x"])
