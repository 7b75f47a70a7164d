"""Errors of operation encoding and decoding; one class per check (see `p2panda.operation.decode`)."""

from __future__ import annotations

from p2panda.errors import P2PandaError

__all__ = [
    "OperationError",
    "MalformedCbor",
    "NotAnArray",
    "InvalidVersion",
    "InvalidAction",
    "InvalidSchemaId",
    "InvalidItemCount",
    "InvalidPrevious",
    "InvalidFields",
    "InvalidFieldValue",
    "NonCanonicalEncoding",
    "InvalidOperation",
]


class OperationError(P2PandaError):
    """Root of every operation error."""


class MalformedCbor(OperationError):
    """OP1: the bytes are not one complete CBOR item (or trailing bytes follow it)."""


class NotAnArray(OperationError):
    """OP2: the top level is not an array."""


class InvalidVersion(OperationError):
    """OP3: the version is missing, not an unsigned integer, or not 1."""


class InvalidAction(OperationError):
    """OP4: the action is missing or not 0 (create), 1 (update) or 2 (delete)."""


class InvalidSchemaId(OperationError):
    """OP5: the schema id is missing, not text, or not a valid schema id."""


class InvalidItemCount(OperationError):
    """OP6: the array has the wrong number of items for its action."""


class InvalidPrevious(OperationError):
    """OP7: previous is not a non-empty, sorted, duplicate-free array of 34-byte hashes."""


class InvalidFields(OperationError):
    """OP8: fields is not a map of text keys sorted by UTF-8 bytes, or a CREATE has none."""


class InvalidFieldValue(OperationError):
    """OP9: a field value is of a kind no p2panda field type has."""


class NonCanonicalEncoding(OperationError):
    """OP10: the bytes differ from the canonical encoding of what they decode to."""


class InvalidOperation(OperationError):
    """An `Operation` value built in code that breaks the operation rules."""
