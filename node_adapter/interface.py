"""The `Node` interface: what an application needs from a node, whether embedded or remote.

Implementations provide the primitive verbs (next args, publish, document reads, collection queries,
change subscriptions); the writing verbs (`create`, `update`, `delete`) are built on them here, once:
ask for next args, encode and sign, publish.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, Self

from node_adapter.errors import PublishRefused, QueryRefused
from node_adapter.key_groups import KeyGroupVerbs
from node_adapter.types import DocumentView, Page, Query
from p2panda.entry import sign_entry
from p2panda.hash import Hash
from p2panda.identity import KeyPair, PublicKey
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.node.changes import DocumentChanged
from p2panda.node.policy import OperationStatus
from p2panda.node.publish import NextArgs
from p2panda.operation import Operation, encode_operation
from p2panda.operation.value import OperationValue, PinnedRelationList
from p2panda.schema import SYSTEM_SCHEMAS, FieldType, Schema, SchemaId, SystemSchema

__all__ = ["Node", "Changes"]

FIELD_DEFINITION_SCHEMA = SYSTEM_SCHEMAS[SchemaId.system_schema(SystemSchema.SCHEMA_FIELD_DEFINITION_V1)]
SCHEMA_DEFINITION_SCHEMA = SYSTEM_SCHEMAS[SchemaId.system_schema(SystemSchema.SCHEMA_DEFINITION_V1)]


class Changes(abc.ABC):
    """A live stream of document changes; `async with` it, then `async for` over it."""

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[DocumentChanged]: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class Node(KeyGroupVerbs, abc.ABC):
    """An async p2panda node for applications. `async with` starts and stops it. Key-group verbs
    (`create_key_group`, `set_member`, `remove_member`, `key_group`, `why_not_counted`) come from
    `key_groups.py`."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @abc.abstractmethod
    async def next_args(self, public_key: PublicKey, view_id: DocumentViewId | None = None) -> NextArgs: ...

    @abc.abstractmethod
    async def publish(self, entry: bytes, operation: bytes) -> NextArgs:
        """Publish a signed entry with its operation; raises `PublishRefused` with the node's reason."""

    @abc.abstractmethod
    async def document(self, schema: Schema, document_id: DocumentId) -> DocumentView | None:
        """The current view of a document, None when unknown or deleted."""

    @abc.abstractmethod
    async def document_at(self, schema: Schema, view_id: DocumentViewId) -> DocumentView | None: ...

    async def query(
        self,
        schema: Schema,
        *,
        filter: Mapping[str, Mapping[str, Any]] | None = None,
        meta: Mapping[str, Mapping[str, Any]] | None = None,
        order_by: str = "DOCUMENT_ID",
        direction: str = "ASC",
        first: int = 25,
        after: str | None = None,
    ) -> Page:
        """One page of a schema's documents, with aquadoggo's filter and meta filter semantics."""
        return await self._query(schema, Query(filter, meta, order_by, direction, first, after))

    @abc.abstractmethod
    async def _query(self, schema: Schema, query: Query) -> Page: ...

    @abc.abstractmethod
    async def subscribe(self, schema_ids: frozenset[str] | None = None) -> Changes:
        """Changes from now on (live when this returns) to documents of the given schemas, or all."""

    @abc.abstractmethod
    async def operation_status(self, operation_id: Hash) -> OperationStatus | None:
        """Whether an operation counts under the node's policy (None: the node does not hold it)."""

    @abc.abstractmethod
    async def log_heights(self, public_key: PublicKey) -> dict[int, int]:
        """Log id -> highest seq num the node holds, for every log of an author."""

    # --- writing, built on next_args and publish ---------------------------------------------------

    async def create(self, key_pair: KeyPair, schema: Schema, fields: Mapping[str, OperationValue]) -> DocumentId:
        operation = Operation.create(schema.id, fields)
        return DocumentId((await self._sign_and_publish(key_pair, operation, None)).to_bytes())

    async def update(
        self, key_pair: KeyPair, schema: Schema, view_id: DocumentViewId, fields: Mapping[str, OperationValue]
    ) -> DocumentViewId:
        operation = Operation.update(schema.id, view_id, fields)
        return DocumentViewId([await self._sign_and_publish(key_pair, operation, view_id)])

    async def delete(self, key_pair: KeyPair, schema: Schema, view_id: DocumentViewId) -> DocumentViewId:
        operation = Operation.delete(schema.id, view_id)
        return DocumentViewId([await self._sign_and_publish(key_pair, operation, view_id)])

    async def define_schema(
        self, key_pair: KeyPair, name: str, description: str, fields: Mapping[str, FieldType]
    ) -> Schema:
        """Publish a field definition per field and then the schema definition; returns the schema,
        whose id is `<name>_<view id of the definition>`."""
        pinned = []
        for field_name, field_type in fields.items():
            definition = await self.create(
                key_pair, FIELD_DEFINITION_SCHEMA, {"name": field_name, "type": str(field_type)}
            )
            pinned.append(DocumentViewId([definition]))
        schema_document = await self.create(
            key_pair,
            SCHEMA_DEFINITION_SCHEMA,
            {"name": name, "description": description, "fields": PinnedRelationList(tuple(pinned))},
        )
        return Schema(SchemaId.application(name, DocumentViewId([schema_document])), description, dict(fields))

    async def _sign_and_publish(self, key_pair: KeyPair, operation: Operation, view_id: DocumentViewId | None) -> Hash:
        try:
            args = await self.next_args(key_pair.public_key, view_id)
        except QueryRefused as exc:  # e.g. the document was deleted
            raise PublishRefused(str(exc)) from exc
        payload = encode_operation(operation)
        entry = sign_entry(
            key_pair,
            log_id=args.log_id,
            seq_num=args.seq_num,
            payload=payload,
            backlink=args.backlink,
            skiplink=args.skiplink,
        )
        await self.publish(entry, payload)
        return Hash.of(entry)
