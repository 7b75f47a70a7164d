"""Decoding and validation of a single Bamboo entry, without storage.

Checks, in the order they run (each raises its own `EntryError` subclass):

- E1  the input is not empty.
- E2  the tag byte is 0x00; p2panda never writes end-of-log entries, so other tags are refused.
- E3  the author is 32 bytes and a valid ed25519 point.
- E4  the log id is a canonical varu64.
- E5  the sequence number is a canonical varu64 and at least 1.
- E6  links match the sequence number: none at seq 1; skiplink then backlink where lipmaa(seq) != seq-1;
      otherwise a backlink only. Each is a well-formed hash.
- E7  a skiplink differs from the backlink (they point to different entries).
- E8  the payload size is a canonical varu64.
- E9  the payload hash is a well-formed hash.
- E10 exactly 64 signature bytes follow (no trailing bytes; the signature has no length prefix).
- E11 the entry is at most 226 bytes.
- E12 the signature verifies over every byte before it.

E13 (payload size and hash match a given payload) is `verify_payload`; checks that need the author's
log (links point to stored entries, seq num is the next one) belong to the node.
"""

from __future__ import annotations

from p2panda.entry.encode import TAG
from p2panda.entry.errors import (
    EmptyEntry,
    EntryTooLarge,
    IdenticalLinks,
    InvalidAuthor,
    InvalidLinks,
    InvalidLogId,
    InvalidPayloadHash,
    InvalidPayloadSize,
    InvalidSeqNum,
    InvalidSignature,
    InvalidSignatureLength,
    PayloadMismatch,
    UnsupportedTag,
)
from p2panda.entry.lipmaa import is_skiplink_required
from p2panda.entry.model import Entry
from p2panda.hash import HASH_SIZE, Hash, HashError
from p2panda.identity import SIGNATURE_SIZE, InvalidPublicKey, PublicKey
from p2panda.varu64 import VarU64Error, decode_varu64

__all__ = ["decode_entry", "verify_payload", "MAX_ENTRY_SIZE"]

MAX_ENTRY_SIZE = 226


def _read_hash(data: bytes, offset: int, what: str, error: type[InvalidLinks | InvalidPayloadHash]) -> Hash:
    end = offset + HASH_SIZE
    if end > len(data):
        raise error(f"{what} at byte {offset} is truncated: {len(data) - offset} of {HASH_SIZE} bytes")
    try:
        return Hash(data[offset:end])
    except HashError as exc:
        raise error(f"{what} at byte {offset} is not a valid hash: {exc}") from exc


def decode_entry(raw: bytes) -> Entry:
    """Decode `raw` and run checks E1–E12; returns the validated `Entry`."""
    raw = bytes(raw)
    if not raw:  # E1
        raise EmptyEntry("entry is empty")
    if raw[0:1] != TAG:  # E2
        raise UnsupportedTag(f"entry tag must be 0x00, got 0x{raw[0]:02x} (end-of-log entries are not used)")
    # E11 early as well: never spend work on oversized input.
    if len(raw) > MAX_ENTRY_SIZE:
        raise EntryTooLarge(f"entry is {len(raw)} bytes, the maximum is {MAX_ENTRY_SIZE}")
    if len(raw) < 33:  # E3
        raise InvalidAuthor(f"author is truncated: entry is {len(raw)} bytes")
    try:
        public_key = PublicKey(raw[1:33])
    except InvalidPublicKey as exc:
        raise InvalidAuthor(f"author {raw[1:33].hex()} is not a valid ed25519 public key") from exc
    try:  # E4
        log_id, offset = decode_varu64(raw, 33)
    except VarU64Error as exc:
        raise InvalidLogId(f"log id: {exc}") from exc
    try:  # E5
        seq_num, offset = decode_varu64(raw, offset)
    except VarU64Error as exc:
        raise InvalidSeqNum(f"seq num: {exc}") from exc
    if seq_num == 0:
        raise InvalidSeqNum("seq num must be at least 1, got 0")
    skiplink: Hash | None = None
    backlink: Hash | None = None
    if seq_num > 1:  # E6
        if is_skiplink_required(seq_num):
            skiplink = _read_hash(raw, offset, f"skiplink of seq num {seq_num}", InvalidLinks)
            offset += HASH_SIZE
        backlink = _read_hash(raw, offset, f"backlink of seq num {seq_num}", InvalidLinks)
        offset += HASH_SIZE
        if skiplink is not None and skiplink == backlink:  # E7
            raise IdenticalLinks(f"backlink and skiplink are identical at seq num {seq_num}: {backlink.hex()}")
    try:  # E8
        payload_size, offset = decode_varu64(raw, offset)
    except VarU64Error as exc:
        raise InvalidPayloadSize(f"payload size: {exc}") from exc
    payload_hash = _read_hash(raw, offset, "payload hash", InvalidPayloadHash)  # E9
    offset += HASH_SIZE
    remaining = len(raw) - offset
    if remaining != SIGNATURE_SIZE:  # E10
        if remaining < SIGNATURE_SIZE:
            raise InvalidSignatureLength(f"signature is truncated: {remaining} of {SIGNATURE_SIZE} bytes")
        raise InvalidSignatureLength(
            f"{remaining - SIGNATURE_SIZE} trailing bytes after the {SIGNATURE_SIZE}-byte signature"
        )
    signature = raw[offset:]
    if not public_key.verify(raw[:offset], signature):  # E12
        raise InvalidSignature(
            f"signature does not verify for author {public_key.hex()} at log {log_id} seq num {seq_num}"
        )
    return Entry(
        public_key=public_key,
        log_id=log_id,
        seq_num=seq_num,
        skiplink=skiplink,
        backlink=backlink,
        payload_size=payload_size,
        payload_hash=payload_hash,
        signature=signature,
        hash=Hash.of(raw),
        raw=raw,
    )


def verify_payload(entry: Entry, payload: bytes) -> None:
    """E13: the payload has exactly the size and hash the entry claims."""
    if len(payload) != entry.payload_size:
        raise PayloadMismatch(
            f"payload is {len(payload)} bytes but entry {entry.hash.hex()} claims {entry.payload_size}"
        )
    actual = Hash.of(payload)
    if actual != entry.payload_hash:
        raise PayloadMismatch(
            f"payload hash {actual.hex()} differs from {entry.payload_hash.hex()} claimed by entry {entry.hash.hex()}"
        )
