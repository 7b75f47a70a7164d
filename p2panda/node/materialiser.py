"""Materialisation: turning stored operations into documents and views, and schemas into the registry.

The node materialises an accepted operation in the transaction that stores it. The common cases are
incremental: a CREATE starts a view, and an UPDATE whose `previous` are exactly the document's current
tips extends it when the current walk order ends at one of those tips (`walk_ends_at_tip`): then the new
operation is walked last, so its fields win. p2panda's walk is not always topological (a merge can be
walked before one of its parents, which then comes last), so a tip is not always last. Anything else
(merges of concurrent branches, deletes, late arrivals) rebuilds the document from all its operations.
Ingest paths that defer materialisation leave a task per document, finished at the next start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import MappingProxyType

from p2panda.document import Document, build_document
from p2panda.hash import Hash
from p2panda.identity import PublicKey
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.node.policy import OperationStatus, Policy, Written, counted_operations
from p2panda.node.store import Store, StoredDocument, StoredOperation
from p2panda.operation import Operation, OperationAction, decode_operation
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

__all__ = ["Accepted", "Materialised", "SchemaRegistry", "load_document", "materialise", "operation_status"]

log = logging.getLogger(__name__)

SCHEMA_DEFINITION = SchemaId.system_schema(SystemSchema.SCHEMA_DEFINITION_V1)
_SYSTEM_IDS = frozenset(str(k) for k in SYSTEM_SCHEMAS)
FIELD_DEFINITION = SchemaId.system_schema(SystemSchema.SCHEMA_FIELD_DEFINITION_V1)


class SchemaRegistry:
    """Known schemas: the system schemas and every view of every schema definition document.

    With an allow-list, only the system schemas and the listed application schemas are known: the node
    refuses operations of any other schema as of an unknown one.
    """

    def __init__(self, allowed: frozenset[str] | None = None) -> None:
        self._schemas: dict[str, Schema] = {str(k): v for k, v in SYSTEM_SCHEMAS.items()}
        self.allowed = allowed

    def get(self, schema_id: str) -> Schema | None:
        return self._schemas.get(schema_id)

    def is_allowed(self, schema_id: str) -> bool:
        return self.allowed is None or schema_id in self.allowed or schema_id in _SYSTEM_IDS

    def all(self) -> list[Schema]:
        return list(self._schemas.values())

    def add(self, schema: Schema) -> bool:
        key = str(schema.id)
        if not self.is_allowed(key):
            return False
        new = key not in self._schemas
        self._schemas[key] = schema
        return new

    def discard(self, schema_id: str) -> None:
        """Forget a schema whose definition was rolled back."""
        if schema_id not in _SYSTEM_IDS:
            self._schemas.pop(schema_id, None)

    def load(self, store: Store) -> None:
        for doc in store.documents_of_schema(str(SCHEMA_DEFINITION)):
            schema = schema_of_definition(store, self, doc.id, None)
            if schema is not None:
                self.add(schema)


def load_document(
    store: Store,
    registry: SchemaRegistry,
    document_id: str,
    view_id: DocumentViewId | None = None,
    policy: Policy | None = None,
    *,
    writing: bool = False,
) -> Document | None:
    """Build a stored document (at `view_id` if given) with typed fields; None if absent.

    With a policy that governs the document's schema, only counted operations build it (see `policy.py`):
    None when its CREATE does not count, or when `view_id` names an operation that does not count.
    """
    stored = store.operations_of_document(document_id)
    if not stored:
        return None
    schema = registry.get(stored[0].schema_id)
    written = [_written(o) for o in stored]
    if policy is not None and schema is not None and policy.governs(schema):
        written, _ = counted_operations(policy, store, schema, written, writing=writing)
        counted = {w.id for w in written}
        if not written or (view_id is not None and any(tip.hex() not in counted for tip in view_id)):
            return None
    ops = [(Hash.from_hex(w.id), PublicKey.from_hex(w.public_key), w.operation) for w in written]
    return build_document(ops, view_id=view_id, schema=schema)


def _written(o: StoredOperation) -> Written:
    return Written(o.id, o.document_id, o.public_key, o.log_id, o.seq_num, decode_operation(o.payload))


def operation_status(
    store: Store, registry: SchemaRegistry, policy: Policy | None, operation_id: str
) -> OperationStatus | None:
    """Whether a stored operation counts, and why not; None for an operation this node does not hold."""
    stored = store.operation(operation_id)
    if stored is None:
        return None
    schema = registry.get(stored.schema_id)
    reason = None
    if policy is not None and schema is not None and policy.governs(schema):
        written = [_written(o) for o in store.operations_of_document(stored.document_id)]
        _, refused = counted_operations(policy, store, schema, written)
        reason = refused.get(operation_id)
    return OperationStatus(operation_id, stored.document_id, stored.schema_id, reason)


def schema_of_definition(
    store: Store, registry: SchemaRegistry, document_id: str, view_id: DocumentViewId | None
) -> Schema | None:
    definition = load_document(store, registry, document_id, view_id)
    if definition is None or definition.fields is None:
        return None
    pinned = definition.fields.get("fields")
    if not isinstance(pinned, PinnedRelationList):
        return None
    field_views: dict[DocumentViewId, Document] = {}
    for field_view in pinned.view_ids:
        first = store.operation(field_view.ids[0].hex())
        if first is None:
            return None  # a field definition has not arrived yet
        doc = load_document(store, registry, first.document_id, field_view)
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


@dataclass(frozen=True, slots=True)
class Materialised:
    """A document's stored current view after materialisation, and a schema it defines, if any."""

    document: StoredDocument
    fields: bytes | None
    schema: Schema | None


def materialise(
    store: Store,
    registry: SchemaRegistry,
    document_id: str,
    accepted: Accepted | None = None,
    policy: Policy | None = None,
) -> Materialised | None:
    """Bring one document's stored current view up to date; None when it has no operation that counts
    (its current view, if any, is removed: M3).

    `accepted` is the operation just stored for it, when known: it allows the incremental cases, except
    for schemas a policy governs (their documents are rebuilt from the operations that count).
    """
    if accepted is not None and policy is not None:
        schema = registry.get(str(accepted.operation.schema_id))
        if schema is not None and policy.governs(schema):
            accepted = None
    extended = None if accepted is None else _extend(store, document_id, accepted)
    if extended is None:
        doc = load_document(store, registry, document_id, policy=policy, writing=True)
        if doc is None:
            store.remove_document(document_id)
            return None
        stored = StoredDocument(
            id=doc.id.hex(),
            schema_id=str(doc.schema_id),
            owner=doc.owner.hex(),
            view_id=str(doc.view_id),
            is_deleted=doc.is_deleted,
            is_edited=doc.is_edited,
            walk_ends_at_tip=bool(doc.operations) and doc.operations[-1] in doc.view_id,
        )
        fields = _fields_cbor(doc)
        store.save_document(stored, fields)
    else:
        stored, fields = extended
    schema = None
    if stored.schema_id == str(SCHEMA_DEFINITION) and not stored.is_deleted:
        schema = schema_of_definition(store, registry, document_id, None)
    return Materialised(stored, fields, schema)


@dataclass(frozen=True, slots=True)
class Accepted:
    """An operation the publish pipeline just stored, with its id and author."""

    id: Hash
    public_key: PublicKey
    operation: Operation


def _extend(store: Store, document_id: str, accepted: Accepted) -> tuple[StoredDocument, bytes] | None:
    """The incremental cases: the stored view and its fields; None when the document needs a rebuild."""
    op = accepted.operation
    op_id = accepted.id.hex()
    if op.action is OperationAction.CREATE:
        created = StoredDocument(op_id, str(op.schema_id), accepted.public_key.hex(), op_id, False, False, True)
        fields = encode_canonical({name: to_cbor(value) for name, value in (op.fields or {}).items()})
        store.save_document(created, fields, new_document=True, new_view=True)
        return created, fields
    if op.action is not OperationAction.UPDATE or op.previous is None:
        return None
    current = store.document(document_id)
    if current is None or current.is_deleted or not current.walk_ends_at_tip:
        return None
    if sorted(current.view_id.split("_")) != sorted(h.hex() for h in op.previous):
        return None
    view = store.view(current.view_id)
    if view is None or view[3] is None:
        return None
    stored_fields = decode_single(view[3])
    assert isinstance(stored_fields, dict)
    merged = dict(stored_fields)
    merged.update({name: to_cbor(value) for name, value in (op.fields or {}).items()})
    updated = StoredDocument(document_id, current.schema_id, current.owner, op_id, False, True, True)
    fields = encode_canonical(merged)
    store.save_document(updated, fields, new_view=True)
    return updated, fields
