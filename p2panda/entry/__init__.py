"""Bamboo entries of p2panda (ed25519-yasmf): lipmaa links, encoding, signing, decoding, validation.

Wire layout::

    tag (0x00) | author (32) | varu64 log_id | varu64 seq_num | [skiplink (34)] | [backlink (34)]
    | varu64 payload_size | payload_hash (34) | signature (64)

See `p2panda.entry.decode` for the numbered checks E1–E13.
"""

from p2panda.entry.decode import MAX_ENTRY_SIZE, decode_entry, verify_payload
from p2panda.entry.encode import sign_entry
from p2panda.entry.errors import (
    EmptyEntry,
    EntryError,
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
    LinkArgumentError,
    PayloadMismatch,
    UnsupportedTag,
)
from p2panda.entry.lipmaa import is_skiplink_required, lipmaa
from p2panda.entry.model import Entry

__all__ = [
    "MAX_ENTRY_SIZE",
    "Entry",
    "EntryError",
    "EmptyEntry",
    "UnsupportedTag",
    "InvalidAuthor",
    "InvalidLogId",
    "InvalidSeqNum",
    "InvalidLinks",
    "IdenticalLinks",
    "InvalidPayloadSize",
    "InvalidPayloadHash",
    "InvalidSignatureLength",
    "EntryTooLarge",
    "InvalidSignature",
    "PayloadMismatch",
    "LinkArgumentError",
    "decode_entry",
    "verify_payload",
    "sign_entry",
    "lipmaa",
    "is_skiplink_required",
]
