"""Errors of building documents from operations; one class per check (see `p2panda.document.build`)."""

from __future__ import annotations

from p2panda.errors import P2PandaError

__all__ = [
    "DocumentError",
    "NoOperations",
    "DuplicateOperation",
    "InvalidCreate",
    "SchemaMismatch",
    "DanglingPrevious",
    "UnreachableOperations",
    "UnknownViewTip",
]


class DocumentError(P2PandaError):
    """Root of document errors."""


class NoOperations(DocumentError):
    """D1: there is nothing to build a document from."""


class DuplicateOperation(DocumentError):
    """D2: the same operation id was given twice with different operations."""


class InvalidCreate(DocumentError):
    """D3: not exactly one CREATE, or a CREATE that is not the root."""


class SchemaMismatch(DocumentError):
    """D4: an operation names another schema than the document's CREATE."""


class DanglingPrevious(DocumentError):
    """D5: an operation's previous names an operation outside the document."""


class UnreachableOperations(DocumentError):
    """D6: operations not reachable from the CREATE in a walk (a cycle)."""


class UnknownViewTip(DocumentError):
    """D7: a requested view id names an operation outside the document."""
