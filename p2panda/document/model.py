"""The materialised document value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from p2panda.hash import Hash
from p2panda.identity import PublicKey
from p2panda.ids import DocumentId, DocumentViewId, OperationId
from p2panda.operation.value import OperationValue, PinnedRelation, PinnedRelationList, Relation, RelationList
from p2panda.schema.id import SchemaId

__all__ = ["Document", "RelationValue"]

RelationValue = Relation | RelationList | PinnedRelation | PinnedRelationList


@dataclass(frozen=True, slots=True)
class Document:
    """A document at one view: the reduction of its operations in walk order.

    `fields` is None when the document is deleted. `field_writers` names, per field, the operation whose
    value won. `operations` lists the operation ids of this view in walk order.
    """

    id: DocumentId
    view_id: DocumentViewId
    schema_id: SchemaId
    owner: PublicKey
    fields: Mapping[str, OperationValue] | None
    field_writers: Mapping[str, OperationId]
    is_deleted: bool
    is_edited: bool
    operations: tuple[OperationId, ...]

    @property
    def view_hash(self) -> Hash:
        return self.view_id.view_hash()

    def relations(self) -> dict[str, RelationValue]:
        """The relation-typed fields (only typed when the document was built with its schema)."""
        if self.fields is None:
            return {}
        return {
            name: value
            for name, value in self.fields.items()
            if isinstance(value, (Relation, RelationList, PinnedRelation, PinnedRelationList))
        }
