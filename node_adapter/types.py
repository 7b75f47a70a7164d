"""Values the adapter returns, the same for embedded and remote nodes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from p2panda.document import Document
from p2panda.identity import PublicKey
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.operation.value import OperationValue
from p2panda.schema import SchemaId

__all__ = ["DocumentView", "Page", "Query"]


@dataclass(frozen=True, slots=True)
class DocumentView:
    """A document at one view: what a node serves (no operation history)."""

    id: DocumentId
    view_id: DocumentViewId
    schema_id: SchemaId
    owner: PublicKey
    fields: Mapping[str, OperationValue] | None
    is_edited: bool
    is_deleted: bool

    @classmethod
    def of(cls, doc: Document) -> DocumentView:
        return cls(doc.id, doc.view_id, doc.schema_id, doc.owner, doc.fields, doc.is_edited, doc.is_deleted)


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    documents: list[DocumentView]
    has_next: bool
    end_cursor: str | None


@dataclass(frozen=True, slots=True)
class Query:
    """Collection arguments, named as in aquadoggo's `all_S`."""

    filter: Mapping[str, Mapping[str, Any]] | None = None
    meta: Mapping[str, Mapping[str, Any]] | None = None
    order_by: str = "DOCUMENT_ID"
    direction: str = "ASC"
    first: int = 25
    after: str | None = None
