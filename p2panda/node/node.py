"""The node: store, publish pipeline and materialiser behind one object with a start/stop lifecycle.

It runs inside the caller's event loop. Writes are serialised (one publish at a time) so that the
"next seq num" and "log id" checks never race; reads run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from p2panda.document import Document
from p2panda.entry import Entry
from p2panda.identity import PublicKey
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.node.database import create_engine, default_database_url, migrate
from p2panda.node.errors import ForkDetected, NodeError
from p2panda.node.materialiser import SchemaRegistry, load_document, materialise, view_document
from p2panda.node.publish import NextArgs, Published, document_of_view, next_args, publish
from p2panda.node.store import Store
from p2panda.schema import Schema

__all__ = ["Node", "NodeConfig"]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class NodeConfig:
    data_dir: Path
    database_url: str | None = None

    @property
    def url(self) -> str:
        return self.database_url or default_database_url(self.data_dir)


class Node:
    """An embedded p2panda node. `await node.start()`, use it, `await node.stop()`."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.registry = SchemaRegistry()
        self._engine: AsyncEngine | None = None
        self._write_lock = asyncio.Lock()

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise NodeError("node is not started")
        return self._engine

    async def start(self) -> None:
        if self.config.database_url is None:
            self.config.data_dir.mkdir(parents=True, exist_ok=True)
        self._engine = create_engine(self.config.url)
        await migrate(self._engine)
        async with self._engine.begin() as conn:
            await self.registry.load(Store(conn))
        await self._finish_tasks()

    async def stop(self) -> None:
        if self._engine is not None:
            async with self._write_lock:
                await self._engine.dispose()
            self._engine = None

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _read(self, action: Callable[[Store], Awaitable[T]]) -> T:
        async with self.engine.connect() as conn:
            return await action(Store(conn))

    async def _finish_tasks(self) -> None:
        async with self.engine.begin() as conn:
            pending = await Store(conn).tasks()
        for document_id in pending:
            log.info("finishing materialisation of %s left by an earlier run", document_id)
            await self._materialise(document_id)

    async def _materialise(self, document_id: str) -> None:
        async with self.engine.begin() as conn:
            schema = await materialise(Store(conn), self.registry, document_id)
        if schema is not None and self.registry.add(schema):
            log.info("new schema %s", schema.id)

    async def next_args(self, public_key: PublicKey, view_id: DocumentViewId | None = None) -> NextArgs:
        return await self._read(lambda store: next_args(store, public_key, view_id))

    async def publish(self, entry: bytes, operation: bytes) -> Published:
        """Validate and store an entry with its operation; returns what was stored and the next args.

        Storing and materialising happen in one transaction: an acknowledged operation is always
        materialised, and a failed one leaves nothing (the materialiser task table covers work queued
        by other paths).
        """
        async with self._write_lock:
            try:
                async with self.engine.begin() as conn:
                    store = Store(conn)
                    published = await publish(store, self.registry, entry, operation)
                    schema = await materialise(store, self.registry, published.document_id.hex())
            except ForkDetected as fork:
                await self._record_fork(fork)
                raise
            if schema is not None and self.registry.add(schema):
                log.info("new schema %s", schema.id)
        return published

    async def _record_fork(self, fork: ForkDetected) -> None:
        rejected = fork.entry
        assert isinstance(rejected, Entry)
        async with self.engine.begin() as conn:
            await Store(conn).insert_fork_proof(
                rejected.public_key.hex(), rejected.log_id, rejected.seq_num, fork.kept_hash, rejected.raw
            )
        log.warning("%s", fork)

    async def document(self, document_id: DocumentId) -> Document | None:
        return await self._read(lambda store: load_document(store, self.registry, document_id.hex()))

    async def document_at(self, view_id: DocumentViewId) -> Document | None:
        async def read(store: Store) -> Document | None:
            try:
                document_id = await document_of_view(store, view_id)
            except NodeError:
                return None
            return await load_document(store, self.registry, document_id, view_id)

        return await self._read(read)

    async def documents(self, schema_id: str, include_deleted: bool = False) -> list[Document]:
        """Current views of every document of a schema, read from the materialised views.

        These carry no history: `field_writers` and `operations` are empty (use `document()` for them).
        """
        schema = self.registry.get(schema_id)

        async def read(store: Store) -> list[Document]:
            docs = []
            for stored, fields in await store.current_views(schema_id):
                if stored.is_deleted and not include_deleted:
                    continue
                docs.append(view_document(stored, fields, schema))
            return docs

        return await self._read(read)

    def schema(self, schema_id: str) -> Schema | None:
        return self.registry.get(schema_id)

    async def fork_proofs(self) -> list[tuple[str, int, int, str, bytes]]:
        return await self._read(lambda store: store.fork_proofs())
