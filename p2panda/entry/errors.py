"""Errors of entry encoding, decoding and validation; one class per check (see `p2panda.entry`)."""

from __future__ import annotations

from p2panda.errors import P2PandaError

__all__ = [
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
]


class EntryError(P2PandaError):
    """Root of every entry error."""


class EmptyEntry(EntryError):
    """E1: no bytes at all."""


class UnsupportedTag(EntryError):
    """E2: the tag byte is not 0x00 (p2panda never writes end-of-log entries)."""


class InvalidAuthor(EntryError):
    """E3: the author is truncated or not a valid ed25519 point."""


class InvalidLogId(EntryError):
    """E4: the log id is missing or not a canonical varu64."""


class InvalidSeqNum(EntryError):
    """E5: the sequence number is missing, not a canonical varu64, or zero."""


class InvalidLinks(EntryError):
    """E6: a skiplink or backlink is missing, truncated or not a well-formed hash."""


class IdenticalLinks(EntryError):
    """E7: skiplink and backlink are identical although they must point to different entries."""


class InvalidPayloadSize(EntryError):
    """E8: the payload size is missing or not a canonical varu64."""


class InvalidPayloadHash(EntryError):
    """E9: the payload hash is missing, truncated or not a well-formed hash."""


class InvalidSignatureLength(EntryError):
    """E10: fewer or more than 64 bytes follow the payload hash."""


class EntryTooLarge(EntryError):
    """E11: more bytes than the largest possible entry (226)."""


class InvalidSignature(EntryError):
    """E12: the signature does not verify against the author and the signed bytes."""


class PayloadMismatch(EntryError):
    """E13: a payload does not have the size or hash its entry claims."""


class LinkArgumentError(EntryError):
    """Links given to `sign_entry` that the sequence number does not allow, or missing ones it needs."""
