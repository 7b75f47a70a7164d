"""Errors of the node: publishing, storage and configuration. Messages name the offending value."""

from __future__ import annotations

from p2panda.errors import P2PandaError

__all__ = [
    "NodeError",
    "PublishError",
    "SeqNumMismatch",
    "LinkMismatch",
    "ForkDetected",
    "SchemaNotFound",
    "PreviousNotFound",
    "PreviousFromOtherDocument",
    "DocumentDeleted",
    "LogIdMismatch",
    "OutOfRange",
    "OperationTooLarge",
    "DocumentNotFound",
]


class NodeError(P2PandaError):
    """Root of node errors."""


class PublishError(NodeError):
    """An entry and operation the node refuses; nothing was stored (a fork proof excepted)."""


class SeqNumMismatch(PublishError):
    """P1: the sequence number is not the next one of its log."""


class AlreadyStored(SeqNumMismatch):
    """P1: this very entry is stored already (a repeat, not a fork)."""


class LinkMismatch(PublishError):
    """P2: a backlink or skiplink does not name the stored entry it must."""


class ForkDetected(PublishError):
    """P1: a different entry already holds this (author, log, seq num); the proof is recorded."""

    def __init__(self, message: str, *, kept_hash: str, entry: object) -> None:
        super().__init__(message)
        self.kept_hash = kept_hash
        self.entry = entry


class OperationTooLarge(PublishError):
    """P0: the operation is larger than any node of ours accepts (`MAX_OPERATION_SIZE`)."""


class OutOfRange(PublishError):
    """Log ids and sequence numbers beyond 2^63-1 cannot be stored by this node (SQL BIGINT)."""


class SchemaNotFound(PublishError):
    """P4: the operation names a schema the node does not know."""


class SchemaNotAllowed(PublishError):
    """P4: the operation's schema is not on this node's allow list."""


class PreviousNotFound(PublishError):
    """P5: a previous operation is not stored."""


class PreviousFromOtherDocument(PublishError):
    """P5: previous operations belong to different documents, or to a document of another schema."""


class DocumentDeleted(PublishError):
    """P6: the document has a DELETE and accepts no further operations."""


class LogIdMismatch(PublishError):
    """P7: the log id is not the one this key uses (or must use) for this document."""


class DocumentNotFound(NodeError):
    """A requested document or view is not stored."""
