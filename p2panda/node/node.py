"""The node: store, publish pipeline and materialiser behind one object with a start/stop lifecycle.

It runs inside the caller's event loop; database work runs off the loop (see `database.py`). Writes are
serialised (one publish at a time) so that the "next seq num" and "log id" checks never race; reads run
concurrently. Every accepted operation is announced to subscribers after its transaction commits.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection

from p2panda.document import Document
from p2panda.entry import Entry
from p2panda.errors import P2PandaError
from p2panda.hash import Hash
from p2panda.identity import PublicKey
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.node.batch import BatchStore
from p2panda.node.bundle import BundleError, read_bundle
from p2panda.node.changes import Changes, DocumentChanged, Subscription
from p2panda.node.data_dir import DataDirLock, make_private_dir, make_private_file
from p2panda.node.database import Database, default_database_url, parse_url
from p2panda.node.errors import ForkDetected, NodeError
from p2panda.node.materialiser import (
    Accepted,
    Materialised,
    SchemaRegistry,
    load_document,
    materialise,
    operation_status,
    view_document,
)
from p2panda.node.policy import OperationStatus, Policy, Written
from p2panda.node.publish import NextArgs, Published, document_of_view, next_args, publish
from p2panda.node.store import Store, StoredDocument
from p2panda.schema import Schema

__all__ = ["Node", "NodeConfig"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """`allow_schema_ids`: application schemas this node stores and serves (None: any, as aquadoggo's
    "*"); system schemas are always allowed. `bundles`: files of entries ingested at every start.
    `policy`: which operations count for the schemas it governs (see `policy.py`)."""

    data_dir: Path
    database_url: str | None = None
    allow_schema_ids: frozenset[str] | None = None
    bundles: tuple[Path, ...] = ()
    policy: Policy | None = None

    @property
    def url(self) -> str:
        return self.database_url or default_database_url(self.data_dir)


_Done = tuple[str, "Materialised | None"]


class _BatchBroken(Exception):
    """A step failed after it had written to the batch: the batch is rolled back and redone entry by entry."""


def _create_sqlite_file(url: str) -> None:
    """L2 (data_dir.py): a SQLite database the node creates is 0600 in a 0700 directory."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        path = Path(parsed.database)
        make_private_dir(path.parent)
        make_private_file(path)


def _has_entry(entry_hash: str, conn: Connection) -> bool:
    return Store(conn).has_entry(entry_hash)


class Node:
    """An embedded p2panda node. `await node.start()`, use it, `await node.stop()`."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.policy = config.policy
        self.registry = SchemaRegistry(config.allow_schema_ids)
        self.changes = Changes()
        self._db: Database | None = None
        self._write_lock = asyncio.Lock()
        # Current views of every document of a queried schema, kept up to date by `publish`: collection
        # queries filter, sort and page these in memory (see `documents`).
        self._views: dict[str, dict[str, Document]] = {}
        # Replication sessions watch accepted entries (public key, log id, seq num), counted or not.
        self._entry_watchers: set[asyncio.Queue[tuple[str, int, int]]] = set()
        self._lock = DataDirLock(config.data_dir)

    @property
    def db(self) -> Database:
        if self._db is None:
            raise NodeError("node is not started")
        return self._db

    async def start(self) -> None:
        self._lock.acquire()  # L1 (data_dir.py): one node per data directory
        try:
            _create_sqlite_file(self.config.url)
            db = Database(self.config.url)
            await db.open()
        except BaseException:
            self._lock.release()
            raise
        self._db = db
        try:
            await db.read(lambda conn: self.registry.load(Store(conn)))
            await self._finish_tasks()
            for path in self.config.bundles:
                await self.ingest_bundle(read_bundle(path), str(path))
        except BaseException:
            await self.stop()
            raise

    async def ingest_bundle(self, pairs: list[tuple[bytes, bytes]], name: str = "bundle") -> int:
        """Publish a bundle's entries, skipping those already stored; returns how many were new."""
        new = 0
        for index, (entry, operation) in enumerate(pairs):
            entry_hash = Hash.of(entry).hex()
            if await self.db.read(functools.partial(_has_entry, entry_hash)):
                continue
            try:
                await self.publish(entry, operation)
            except P2PandaError as exc:
                raise BundleError(f"{name} item {index} ({entry_hash}) is refused: {exc}") from exc
            new += 1
        if new:
            log.info("ingested %d new entries from %s", new, name)
        return new

    async def stop(self) -> None:
        if self._db is not None:
            async with self._write_lock:
                self.changes.close()
                await self._db.close()
            self._db = None
        self._lock.release()

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _finish_tasks(self) -> None:
        def finish(conn: Connection) -> list[Schema]:
            store = Store(conn)
            schemas = []
            for document_id in store.tasks():
                log.info("finishing materialisation of %s left by an earlier run", document_id)
                done = materialise(store, self.registry, document_id, policy=self.policy)
                store.finish_task(document_id)
                if done is not None and done.schema is not None:
                    schemas.append(done.schema)
            return schemas

        async with self._write_lock:
            for schema in await self.db.write(finish):
                self._add_schema(schema)

    def _add_schema(self, schema: Schema) -> None:
        if self.registry.add(schema):
            log.info("new schema %s", schema.id)

    async def next_args(self, public_key: PublicKey, view_id: DocumentViewId | None = None) -> NextArgs:
        return await self.db.read(lambda conn: next_args(Store(conn), public_key, view_id))

    def _store(self, store: Store, entry: bytes, operation: bytes) -> tuple[Published, list[_Done]]:
        """Validate and store one entry and materialise what it changes, inside the caller's transaction.
        Every check comes before the first write (see `publish.py`)."""
        published = publish(store, self.registry, entry, operation)
        document_id = published.document_id.hex()
        affected: list[str] = []
        if self.policy is not None:
            e = published.entry
            written = Written(e.hash.hex(), document_id, e.public_key.hex(), e.log_id, e.seq_num, published.operation)
            affected = [d for d in self.policy.accepted(store, written) if d != document_id]
        accepted = Accepted(published.entry.hash, published.entry.public_key, published.operation)
        done = [(document_id, materialise(store, self.registry, document_id, accepted, self.policy))]
        done += [(d, materialise(store, self.registry, d, None, self.policy)) for d in affected]
        return published, done

    async def publish(self, entry: bytes, operation: bytes) -> Published:
        """Validate and store an entry with its operation; returns what was stored and the next args.

        Storing and materialising happen in one transaction: an acknowledged operation is always
        materialised, and a failed one leaves nothing. Once started it runs to its end even when the
        caller is cancelled (a client that hangs up, a replication session that breaks): a transaction
        that commits is always announced to subscribers and replication watchers.
        """
        return await asyncio.shield(self._publish(entry, operation))

    async def _publish(self, entry: bytes, operation: bytes) -> Published:
        async with self._write_lock:
            try:
                published, done = await self.db.write(lambda conn: self._store(Store(conn), entry, operation))
            except BaseException as exc:
                if self.policy is not None:
                    self.policy.reset()
                if isinstance(exc, ForkDetected):
                    await self._record_fork(exc)
                raise
            changed = self._committed(done)
        self._announce(published, changed)
        return published

    async def ingest(self, pairs: Sequence[tuple[bytes, bytes]]) -> list[Published | P2PandaError]:
        """Validate and store a batch of entries in one transaction (replication's path).

        Each entry is validated exactly as by `publish`, in order, so an entry may build on an earlier
        one of the same batch. A refused entry is left out and its error takes its place in the result;
        it holds back nothing else. A fork is refused and its proof recorded in the same transaction.
        Like `publish`, it runs to its end (announcements included) even when the caller is cancelled.
        """
        if not pairs:
            return []
        return await asyncio.shield(self._ingest(pairs))

    async def _ingest(self, pairs: Sequence[tuple[bytes, bytes]]) -> list[Published | P2PandaError]:

        def transaction(conn: Connection) -> tuple[list[Published | P2PandaError], list[tuple[Published, list[_Done]]]]:
            store = BatchStore(conn)
            outcomes: list[Published | P2PandaError] = []
            stored: list[tuple[Published, list[_Done]]] = []
            added: list[str] = []
            try:
                for entry, operation in pairs:
                    writes = store.writes
                    try:
                        published, done = self._store(store, entry, operation)
                    except P2PandaError as exc:
                        if store.writes != writes:
                            raise _BatchBroken from exc
                        if isinstance(exc, ForkDetected):
                            rejected = exc.entry
                            assert isinstance(rejected, Entry)
                            store.insert_fork_proof(
                                rejected.public_key.hex(),
                                rejected.log_id,
                                rejected.seq_num,
                                exc.kept_hash,
                                rejected.raw,
                            )
                            log.warning("%s", exc)
                        outcomes.append(exc)
                        continue
                    # Later entries of the batch may be of a schema defined by this one.
                    for _, result in done:
                        if result is not None and result.schema is not None and self.registry.add(result.schema):
                            added.append(str(result.schema.id))
                    outcomes.append(published)
                    stored.append((published, done))
                store.flush()
            except BaseException:
                for schema_id in added:
                    self.registry.discard(schema_id)
                raise
            return outcomes, stored

        async with self._write_lock:
            try:
                outcomes, stored = await self.db.write(transaction)
            except BaseException as exc:
                if self.policy is not None:
                    self.policy.reset()
                if not isinstance(exc, _BatchBroken):
                    raise
                redo = True  # a step failed after writing: take the entries one transaction each
            else:
                redo = False
                announced = [(published, self._committed(done)) for published, done in stored]
        if redo:
            return [await self._publish_or_error(entry, operation) for entry, operation in pairs]
        for published, changed in announced:
            self._announce(published, changed)
        return outcomes

    async def _publish_or_error(self, entry: bytes, operation: bytes) -> Published | P2PandaError:
        try:
            return await self._publish(entry, operation)
        except P2PandaError as exc:
            return exc

    def _committed(self, done: list[_Done]) -> list[StoredDocument]:
        """Bring the in-memory views and the schema registry up to date after a commit; returns the
        documents whose current view changed."""
        changed = []
        for document_id, result in done:
            if result is None:
                for index in self._views.values():
                    index.pop(document_id, None)
                continue
            if result.schema is not None:
                self._add_schema(result.schema)
            current = result.document
            views = self._views.get(current.schema_id)
            if views is not None:
                views[current.id] = view_document(current, result.fields, self.registry.get(current.schema_id))
            changed.append(current)
        return changed

    def _announce(self, published: Published, changed: list[StoredDocument]) -> None:
        for watcher in self._entry_watchers:
            watcher.put_nowait((published.entry.public_key.hex(), published.entry.log_id, published.entry.seq_num))
        for current in changed:
            if not self.changes.wanted(current.schema_id):
                continue
            self.changes.publish(
                DocumentChanged(
                    document_id=DocumentId.from_hex(current.id),
                    schema_id=current.schema_id,
                    view_id=DocumentViewId.from_str(current.view_id),
                    operation_id=published.entry.hash,
                    public_key=published.entry.public_key,
                    is_deleted=current.is_deleted,
                )
            )

    async def _record_fork(self, fork: ForkDetected) -> None:
        rejected = fork.entry
        assert isinstance(rejected, Entry)
        await self.db.write(
            lambda conn: Store(conn).insert_fork_proof(
                rejected.public_key.hex(), rejected.log_id, rejected.seq_num, fork.kept_hash, rejected.raw
            )
        )
        log.warning("%s", fork)

    def watch_entries(self) -> asyncio.Queue[tuple[str, int, int]]:
        """A queue of (public key, log id, seq num) for every entry accepted from now on;
        `unwatch_entries` it."""
        queue: asyncio.Queue[tuple[str, int, int]] = asyncio.Queue()
        self._entry_watchers.add(queue)
        return queue

    def unwatch_entries(self, queue: asyncio.Queue[tuple[str, int, int]]) -> None:
        self._entry_watchers.discard(queue)

    def subscribe(self, schema_ids: frozenset[str] | None = None) -> Subscription:
        """Changes to documents (of the given schemas, or all) from now on; see `changes.py`."""
        return self.changes.subscribe(schema_ids)

    async def document(self, document_id: DocumentId) -> Document | None:
        return await self.db.read(
            lambda conn: load_document(Store(conn), self.registry, document_id.hex(), policy=self.policy)
        )

    async def log_heights(self, public_key: PublicKey) -> dict[int, int]:
        """Log id -> highest seq num this node holds, for every log of an author."""
        return await self.db.read(lambda conn: Store(conn).log_heights(public_key.hex()))

    async def operation_status(self, operation_id: Hash) -> OperationStatus | None:
        """Whether a stored operation counts and, if not, why (None: this node does not hold it)."""
        return await self.db.read(
            lambda conn: operation_status(Store(conn), self.registry, self.policy, operation_id.hex())
        )

    async def document_at(self, view_id: DocumentViewId) -> Document | None:
        def read(conn: Connection) -> Document | None:
            store = Store(conn)
            try:
                document_id = document_of_view(store, view_id)
            except NodeError:
                return None
            return load_document(store, self.registry, document_id, view_id, self.policy)

        return await self.db.read(read)

    async def documents_by_id(self, document_ids: Sequence[DocumentId]) -> list[Document | None]:
        """`document()` for each id, in one database read."""

        def read(conn: Connection) -> list[Document | None]:
            store = Store(conn)
            return [load_document(store, self.registry, d.hex(), policy=self.policy) for d in document_ids]

        return await self.db.read(read)

    async def documents_by_view(self, view_ids: Sequence[DocumentViewId]) -> list[Document | None]:
        """`document_at()` for each view id, in one database read."""

        def read(conn: Connection) -> list[Document | None]:
            store = Store(conn)
            found: list[Document | None] = []
            for view_id in view_ids:
                try:
                    document_id = document_of_view(store, view_id)
                except NodeError:
                    found.append(None)
                    continue
                found.append(load_document(store, self.registry, document_id, view_id, self.policy))
            return found

        return await self.db.read(read)

    async def documents(self, schema_id: str, include_deleted: bool = False) -> list[Document]:
        """Current views of every document of a schema, read from the materialised views.

        These carry no history: `field_writers` and `operations` are empty (use `document()` for them).
        The first call for a schema loads them into memory; `publish` keeps them current from then on.
        """
        index = self._views.get(schema_id)
        if index is None:
            schema = self.registry.get(schema_id)

            def read(conn: Connection) -> dict[str, Document]:
                return {
                    stored.id: view_document(stored, fields, schema)
                    for stored, fields in Store(conn).current_views(schema_id)
                }

            # Under the write lock, so that no publish lands between the read and the index.
            async with self._write_lock:
                index = self._views.get(schema_id)
                if index is None:
                    index = self._views[schema_id] = await self.db.read(read)
        return [doc for doc in index.values() if include_deleted or not doc.is_deleted]

    def schema(self, schema_id: str) -> Schema | None:
        return self.registry.get(schema_id)

    async def fork_proofs(self) -> list[tuple[str, int, int, str, bytes]]:
        return await self.db.read(lambda conn: Store(conn).fork_proofs())
