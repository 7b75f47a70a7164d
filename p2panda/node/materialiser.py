"""Materialisation: turning stored operations into documents and views, and schemas into the registry.

After each accepted operation the publish transaction leaves a task for its document; the materialiser
rebuilds that document in its own transaction and removes the task. Tasks left by a crash are finished
at the next start, so every acknowledged operation is eventually materialised.
"""

from __future__ import annotations

import logging
from types import MappingProxyType

from p2panda.document import Document, build_document
from p2panda.hash import Hash
from p2panda.identity import PublicKey
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.node.store import Store, StoredDocument
from p2panda.operation import OperationAction, decode_operation
from p2panda.operation.cbor import decode_single, encode_canonical
from p2panda.operation.decode import check_fields
from p2panda.operation.value import OperationValue, PinnedRelationList, to_cbor
from p2panda.schema import (
    SYSTEM_SCHEMAS,
    Schema,
    SchemaError,
    SchemaId,
    SystemSchema,
    schema_from_documents,
    typed_value,
)

__all__ = ["SchemaRegistry", "load_document", "materialise"]

log = logging.getLogger(__name__)

SCHEMA_DEFINITION = SchemaId.system_schema(SystemSchema.SCHEMA_DEFINITION_V1)
FIELD_DEFINITION = SchemaId.system_schema(SystemSchema.SCHEMA_FIELD_DEFINITION_V1)


class SchemaRegistry:
    """Known schemas: the system schemas and every view of every schema definition document."""

    def __init__(self) -> None:
        self._schemas: dict[str, Schema] = {str(k): v for k, v in SYSTEM_SCHEMAS.items()}

    def get(self, schema_id: str) -> Schema | None:
        return self._schemas.get(schema_id)

    def all(self) -> list[Schema]:
        return list(self._schemas.values())

    def add(self, schema: Schema) -> bool:
        key = str(schema.id)
        new = key not in self._schemas
        self._schemas[key] = schema
        return new

    async def load(self, store: Store) -> None:
        for doc in await store.documents_of_schema(str(SCHEMA_DEFINITION)):
            schema = await schema_of_definition(store, self, doc.id, None)
            if schema is not None:
                self.add(schema)


async def load_document(
    store: Store, registry: SchemaRegistry, document_id: str, view_id: DocumentViewId | None = None
) -> Document | None:
    """Build a stored document (at `view_id` if given) with typed fields; None if absent."""
    stored = await store.operations_of_document(document_id)
    if not stored:
        return None
    schema = registry.get(stored[0].schema_id)
    ops = [(Hash.from_hex(o.id), PublicKey.from_hex(o.public_key), decode_operation(o.payload)) for o in stored]
    return build_document(ops, view_id=view_id, schema=schema)


async def schema_of_definition(
    store: Store, registry: SchemaRegistry, document_id: str, view_id: DocumentViewId | None
) -> Schema | None:
    definition = await load_document(store, registry, document_id, view_id)
    if definition is None or definition.fields is None:
        return None
    pinned = definition.fields.get("fields")
    if not isinstance(pinned, PinnedRelationList):
        return None
    field_views: dict[DocumentViewId, Document] = {}
    for field_view in pinned.view_ids:
        first = await store.operation(field_view.ids[0].hex())
        if first is None:
            return None  # a field definition has not arrived yet
        doc = await load_document(store, registry, first.document_id, field_view)
        if doc is not None:
            field_views[field_view] = doc
    try:
        return schema_from_documents(definition, field_views)
    except SchemaError as exc:
        log.warning("schema definition %s does not give a schema: %s", document_id, exc)
        return None


def view_document(stored: StoredDocument, fields: bytes | None, schema: Schema | None) -> Document:
    """A document from its stored current view (no operation history)."""
    values: dict[str, OperationValue] | None = None
    if fields is not None:
        plain = check_fields(decode_single(fields), OperationAction.UPDATE)
        values = (
            dict(plain)
            if schema is None
            else {name: typed_value(name, schema.fields[name], value) for name, value in plain.items()}
        )
    return Document(
        id=DocumentId.from_hex(stored.id),
        view_id=DocumentViewId.from_str(stored.view_id),
        schema_id=SchemaId.parse(stored.schema_id),
        owner=PublicKey.from_hex(stored.owner),
        fields=None if values is None else MappingProxyType(values),
        field_writers=MappingProxyType({}),
        is_deleted=stored.is_deleted,
        is_edited=stored.is_edited,
        operations=(),
    )


def _fields_cbor(doc: Document) -> bytes | None:
    if doc.fields is None:
        return None
    return encode_canonical({name: to_cbor(value) for name, value in doc.fields.items()})


async def materialise(store: Store, registry: SchemaRegistry, document_id: str) -> Schema | None:
    """Rebuild one document and store its current view; returns a schema it defines, if any."""
    doc = await load_document(store, registry, document_id)
    await store.finish_task(document_id)
    if doc is None:
        return None
    await store.save_document(
        StoredDocument(
            id=doc.id.hex(),
            schema_id=str(doc.schema_id),
            owner=doc.owner.hex(),
            view_id=str(doc.view_id),
            is_deleted=doc.is_deleted,
            is_edited=doc.is_edited,
        ),
        _fields_cbor(doc),
    )
    if doc.schema_id == SCHEMA_DEFINITION and not doc.is_deleted:
        return await schema_of_definition(store, registry, document_id, None)
    return None
