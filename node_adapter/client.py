"""The `Client`: one identity's secret groups over a `Node` (embedded or remote).

The client does the I/O around `secret_group.engine` (which is sans-IO): it reads group documents from
the node, feeds them to the engine in the right order, stores what came out in its `ClientStore` (one
transaction per step) and publishes what the engine produced through its outbox.

It is built in layers, a private module per concern, each calling only the layers below it (a layer's
class does not have the methods above it, so mypy holds the direction); each module lists its rules:

    _client_core     shared state, one transaction per step, signing, the outbox flush, access levels
    _client_send     the send path: sealing, re-sending (rule 4), queued sends (Q1), key packages
    _client_members  membership commits: reconcile, staggering (S1-S3), honouring rejoin requests (J2)
    _client_commits  the commit tree: convergence and rollback (C2, C3), rejoin (J1, J3), applying a commit
    _client_receive  the receive path: subscription or sweep, parse (D1-D4), pending, drain (C1-C4)
    client           the public API and the lifecycle (this module)

Lifecycle: `start` opens the store, subscribes (or polls), publishes the outbox and key packages, sweeps
(or leaves the first sweep to the background) and follows the node in a task; `stop` cancels and awaits
every background task (the follower and the staggered reconciles) before it closes the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Self

from keygroups import Level, Member
from node_adapter import state_db
from node_adapter._client_core import ClientEvent, log
from node_adapter._client_members import STAGGER
from node_adapter._client_receive import _Receiving
from node_adapter._client_send import KEY_PACKAGE_TARGET
from node_adapter.client_store import ClientStore, InnerRow, Transaction
from node_adapter.embedded import EmbeddedNode
from node_adapter.errors import NodeAdapterError, PublishRefused
from node_adapter.group import Group
from node_adapter.interface import Changes, Node
from node_adapter.key_groups import KeyGroup
from p2panda.document import Document, build_document
from p2panda.errors import P2PandaError
from p2panda.hash import Hash
from p2panda.identity import KeyPair, PublicKey
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.operation import Operation, decode_operation, encode_operation
from p2panda.operation.value import OperationValue, Relation
from p2panda.schema import Schema, validate_operation
from secret_group.documents import GroupDoc, Mode
from secret_group.engine import Engine
from secret_group.errors import NotMember, UnknownSchema
from secret_group.mls import MlsMember
from secret_group.schemas import INNER_SCHEMAS, SECRET_GROUP_SCHEMA

__all__ = ["Client", "ClientEvent", "KEY_PACKAGE_TARGET"]


def _resolved(operation: Operation, ids: set[str]) -> Operation:
    """A2: `previous` ids that are no operation of the document left out while one remains (else as it is,
    and the document does not build)."""
    if operation.previous is None:
        return operation
    known = [p for p in operation.previous if p.hex() in ids]
    if not known or len(known) == len(operation.previous):
        return operation
    return replace(operation, previous=DocumentViewId(known))


class Client(_Receiving):
    """`async with Client(node, key_pair) as client:` publishes key packages and follows the identity's
    groups in the background (live with a subscription, by polling on nodes without one)."""

    def __init__(
        self,
        node: Node,
        key_pair: KeyPair,
        *,
        state_path: Path | None = None,
        passphrase: bytes | None = None,
        schemas: Iterable[Schema] = (),
        poll_interval: float = 1.0,
        stagger: float = STAGGER,
        sync_in_background: bool = False,
    ) -> None:
        if state_path is None:
            if not isinstance(node, EmbeddedNode):
                raise ValueError("a client of a remote node needs a state_path for its local state")
            state_path = node.node.config.data_dir / f"client-{key_pair.public_key.hex()[:16]}.sqlite3"
        self.node = node
        self.key_pair = key_pair
        self.me = key_pair.public_key.hex()
        self.state_path = state_path
        # With a passphrase the state files are encrypted at rest under a data key sealed with it
        # (`node_adapter.state_db`); `state_key` is that key once started, for the chat's file too.
        self._passphrase = passphrase
        self.state_key: bytes | None = None
        self.schemas: dict[str, Schema] = dict(INNER_SCHEMAS)
        for schema in schemas:
            self.schemas[str(schema.id)] = schema
        self._poll_interval = poll_interval
        # True: `start` returns before the first full sweep, which runs first thing in the background
        # (an application shows what it stored before at once); `synced` is set once it is done.
        self._sync_in_background = sync_in_background
        self.synced = asyncio.Event()
        self._lock = asyncio.Lock()
        self._store: ClientStore | None = None
        self._member: MlsMember | None = None
        self._changes: Changes | None = None
        self._task: asyncio.Task[None] | None = None
        self._listeners: set[asyncio.Queue[ClientEvent]] = set()
        # Resolved owner key groups, dropped whenever a membership change arrives (or we make one).
        self._access: dict[str, tuple[KeyGroup, dict[str, Level]]] = {}
        self._stagger = stagger
        self._staggered: dict[str, asyncio.Task[None]] = {}
        self.last_error: str | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        # Argon2id (about 0.1 s) in a thread: the embedded node shares this event loop.
        self.state_key = await asyncio.to_thread(state_db.state_key, self.state_path, self._passphrase)
        self._store = ClientStore(self.state_path, self.state_key)
        self._member = MlsMember(self.key_pair.private_key(), self._store.mls_items())
        self.engine = Engine(self._member)
        try:
            await self._subscribe()
        except NodeAdapterError as exc:  # a node without subscriptions (a stock aquadoggo): poll
            log.info("no subscriptions (%s): polling every %.1f s", exc, self._poll_interval)
            self._changes = None
        try:
            async with self._lock:
                await self._flush()
            await self.ensure_key_packages()
            if not self._sync_in_background:
                await self.sync()
        except BaseException:
            await self.stop()
            raise
        self._task = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        for task in list(self._staggered.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._changes is not None:
            await self._changes.close()
            self._changes = None
        if self._store is not None:
            self._store.close()
            self._store = None

    async def events(self) -> AsyncIterator[ClientEvent]:
        """Events from now on, until the client stops."""
        queue: asyncio.Queue[ClientEvent] = asyncio.Queue()
        self._listeners.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._listeners.discard(queue)

    async def create_group(self, name: str, *, history: bool = False) -> Group:
        """A new group managed by this identity: its key group, its secret_group document, its MLS group."""
        async with self._lock:
            await self._flush()
            owner = await self.node.create_key_group(self.key_pair, "secret group")
            mode = Mode.HISTORY if history else Mode.RATCHET
            fields: dict[str, OperationValue] = {"owner": Relation(DocumentId.from_hex(owner)), "mode": mode.value}
            operation = Operation.create(SECRET_GROUP_SCHEMA.id, fields)
            args = await self._next_args(None)
            group_id, entry, payload = self._sign(args, operation)
            record = self.engine.create(GroupDoc(group_id, self.me, owner, mode), name)
            items = self.member.group_items(record.mls_id)

            def writes(tx: Transaction) -> None:
                tx.group(record)
                tx.snapshot(record, 0, items, {group_id})

            self._persist(writes, (group_id, entry, payload))
            await self._flush()
        self._emit("joined", group_id)
        return Group(self, group_id)

    async def groups(self) -> list[Group]:
        """The groups this identity is a member of (created or joined by welcome)."""
        return [Group(self, r.id) for r in self.store.groups() if r.active]

    async def all_groups(self) -> list[Group]:
        """Every group this client knows, those it was removed from included."""
        return [Group(self, r.id) for r in self.store.groups()]

    async def group(self, group_id: str) -> Group:
        if self.store.group(group_id) is None:
            raise NotMember(f"group {group_id} is not known to this client")
        return Group(self, group_id)

    async def send_operation(self, group_id: str, operation: Operation) -> str:
        """Encrypt an inner operation into an envelope and publish it; returns the envelope's id, which is
        the inner operation's id (and, for a CREATE, the inner document's id)."""
        schema = self.schemas.get(str(operation.schema_id))
        if schema is None:
            raise UnknownSchema(f"schema {operation.schema_id} is not known to this client")
        validate_operation(operation, schema)
        async with self._lock:
            record = self.record(group_id)
            if not record.active:
                raise NotMember(f"{self.me} is no longer a member of group {group_id}")
            document_id = None
            if operation.previous is not None:
                document_id = self.store.document_of(next(iter(operation.previous)).hex())
                if document_id is None:
                    raise PublishRefused(f"{operation.previous} is not an operation of group {group_id}")
            await self._flush()
            await self._drain(group_id)  # send in the newest epoch this node has reached
            record = self.record(group_id)
            if not record.active:
                raise NotMember(f"{self.me} is no longer a member of group {group_id}")
            plaintext = encode_operation(operation)
            if await self._held(record) or self.store.own_envelopes(group_id, "queued"):  # Q1, in order
                queued_id = self._queue(record, document_id, operation, plaintext)
                self._emit("message", group_id, queued_id)
                return queued_id
            args = await self._next_args(None)
            epoch, envelope_id, entry, payload = self._seal_envelope(record, args, plaintext)
            row = InnerRow(
                envelope_id,
                group_id,
                document_id or envelope_id,
                self.me,
                str(operation.schema_id),
                plaintext,
                self._lamport_of(operation),
                epoch,
            )

            def writes(tx: Transaction) -> None:
                tx.inner(row)
                tx.digest(group_id, self.me, hashlib.sha256(plaintext).digest(), envelope_id)
                tx.processed(envelope_id, group_id, "envelope", "own")

            self._persist(writes, (envelope_id, entry, payload))
            await self._flush()
        self._emit("message", group_id, envelope_id)
        return envelope_id

    async def reconcile(self, group_id: str) -> bool:
        """Commit the difference between the owner key group (read level or more) and the MLS members, if
        this identity manages the group. Members without a published key package stay pending. Returns
        whether a commit was made."""
        async with self._lock:
            return await self._reconcile(group_id)

    async def change_member(self, group_id: str, member: Member, level: Level | None) -> None:
        """Set a member's level in the owner key group (None: remove it) and commit the MLS difference
        at once. Under the client's lock: the key-group change is signed in a new log like every other
        write of this client, so it must not race a send for the same next log id."""
        async with self._lock:
            await self._flush()
            owner = self.record(group_id).owner
            if level is None:
                await self.node.remove_member(self.key_pair, owner, member)
            else:
                await self.node.set_member(self.key_pair, owner, member, level)
            await self._reconcile(group_id)

    async def rotate(self, group_id: str) -> None:
        """A self-update commit by a manager: fresh keys (post-compromise security), and whatever
        membership difference is pending."""
        async with self._lock:
            await self._reconcile(group_id, rotate=True)

    def documents_of(self, group_id: str, schema: Schema) -> list[Document]:
        """The group's decrypted documents of a schema, deleted ones left out."""
        rows = self.store.inner_rows(group_id, schema_id=str(schema.id))
        by_document: dict[str, list[InnerRow]] = {}
        for row in rows:
            by_document.setdefault(row.document_id, []).append(row)
        documents = []
        for document_rows in by_document.values():
            document = self._build(document_rows, schema)
            if document is not None and not document.is_deleted:
                documents.append(document)
        return documents

    def document_of(self, group_id: str, document_id: str, schema: Schema | None = None) -> Document | None:
        rows = self.store.inner_rows(group_id, document_id=document_id)
        if not rows:
            return None
        if schema is None:
            schema = self.schemas.get(rows[0].schema_id)
        return self._build(rows, schema)

    def _build(self, rows: list[InnerRow], schema: Schema | None) -> Document | None:
        try:
            operations = [
                (Hash.from_hex(row.id), PublicKey.from_hex(row.author), decode_operation(row.operation)) for row in rows
            ]
            ids = {row.id for row in rows}
            if any(p.hex() not in ids for _, _, op in operations for p in op.previous or ()):  # A2
                operations = [(i, a, _resolved(op, ids)) for i, a, op in operations]
            return build_document(operations, schema=schema)
        except P2PandaError as exc:
            log.info("document of %s does not build: %s", rows[0].id, exc)
            return None
