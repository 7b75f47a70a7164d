"""Typed relation values for operation fields.

Without a schema, decoding cannot tell a 34-byte `bytes` value from a relation, nor a relation list from
a pinned relation: decoded operations carry plain values (`bytes`, `list[Hash]`, `list[list[Hash]]`),
and schema validation turns them into these types. Encoding either form gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from p2panda.hash import Hash
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.operation.cbor import CborValue

__all__ = [
    "Relation",
    "RelationList",
    "PinnedRelation",
    "PinnedRelationList",
    "OperationValue",
    "PlainValue",
    "to_cbor",
]


@dataclass(frozen=True, slots=True)
class Relation:
    document_id: DocumentId


@dataclass(frozen=True, slots=True)
class RelationList:
    """Document ids; order and duplicates are kept."""

    document_ids: tuple[DocumentId, ...]


@dataclass(frozen=True, slots=True)
class PinnedRelation:
    view_id: DocumentViewId


@dataclass(frozen=True, slots=True)
class PinnedRelationList:
    """View ids; outer order kept; may be empty."""

    view_ids: tuple[DocumentViewId, ...]


PlainValue = bool | int | float | str | bytes | list[Hash] | list[list[Hash]]
OperationValue = PlainValue | Relation | RelationList | PinnedRelation | PinnedRelationList


def to_cbor(value: OperationValue) -> CborValue:
    """The CBOR data model form of a field value."""
    if isinstance(value, Relation):
        return value.document_id.to_bytes()
    if isinstance(value, RelationList):
        return [d.to_bytes() for d in value.document_ids]
    if isinstance(value, PinnedRelation):
        return value.view_id.to_bytes_list()
    if isinstance(value, PinnedRelationList):
        return [v.to_bytes_list() for v in value.view_ids]
    if isinstance(value, list):
        return [[h.to_bytes() for h in item] if isinstance(item, list) else item.to_bytes() for item in value]
    return value
