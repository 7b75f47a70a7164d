"""The `Client`: one identity's secret groups over a `Node` (embedded or remote).

The client does the I/O around `secret_group.engine` (which is sans-IO): it reads group documents from
the node, feeds them to the engine in the right order, stores what came out in its `ClientStore` (one
transaction per step) and publishes what the engine produced through its outbox.

Data path of a received document (commit or envelope):

    node --(subscription or sweep)--> parse (D1-D4) --> pending table
    pending --(drain: envelopes of reached epochs first, then the commit on the tip)--> engine (G1-G8)
    engine --> one transaction: MLS journal + group record + processed mark + decrypted operation

A sent operation: next args from the node -> encrypt (engine) -> sign -> one transaction (MLS journal,
own plaintext, outbox row) -> publish. A crash between the transaction and the publish re-publishes the
stored entry at the next start: an MLS ratchet key is never used twice, and nothing acknowledged is lost.

Ordering rules of the drain (why they hold):
- C1 the envelopes of an epoch are opened before the commit that ends the epoch is applied, so a member
  catching up across many commits reads every message it was entitled to;
- C2 rival commits are ranked by `secret_group.convergence` (K1): the client applies, rolls back to a
  snapshot and replays (R1, R2, R5), or rejoins (R3, J1-J3 below) towards the winning path;
- C3 a commit waits until the key-group changes it names (its causal point) are known here;
- C4 an own envelope or commit is never processed again: it was stored as processed before it was sent.

Commit staggering (issue 17 rule 5: in a connected group one commit per epoch is the normal case):
- S1 a manager that changes the key group itself (`add`, `remove`, `change_member`) commits at once. A
  membership difference it did not make (a key-group change or a key package arriving) is committed by the
  managers that are MLS members in turn: ranked by sha256(tip, key), the k-th (from 0) waits (k+1)*STAGGER
  seconds (the wait before the first leaves the changing manager's own commit time to arrive);
- S2 a waiting manager cancels if a commit naming the tip it waited on arrived meanwhile, or its tip moved;
- S3 one waiting reconcile per group at a time; it commits the difference as the key group is when it fires.
  A drain that leaves a difference (a commit lost a race, a rejoin request arrived) schedules one too (rule 4).

A removed member is cut off (issue 17 rule 6):
- Q1 while the key group says someone is removed whom MLS still has (or this member's branch lost, J1), new
  operations are not sealed: `send_operation` stores them as "queued" (an own inner row under a local id,
  its outbox state "queued"), and they are sealed and published in the current epoch once the removal is
  committed (or the member re-added), in the order they were sent; the local id then shows its envelope's
  outbox state. Readers know the operation by its envelope id, as for a re-sent one (rule 4).

Rejoin (issue 17 rule 3 beyond R, R3 of `secret_group.convergence`):
- J1 a member whose branch lost deeper than its snapshots stops sending and committing on it, and publishes
  a rejoin request: an `mls_commit` document with an empty MLS commit, naming the winning tip it saw as
  `parent` and a fresh key package of its own in `key_packages` (once per winning tip). Requests are never
  ranked or applied.
- J2 a manager on the winning path commits open requests (`open_rejoins`) of keys with read level: the
  requester's stale leaf is removed first if it has one, then it is added with the requested key package.
- J3 the requester joins by the welcome of the commit that re-adds it (its lost state dropped) and re-sends
  its own operations sealed on the losing branch.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import cbor2

from keygroups import Level, Member
from keygroups.policy import flatten
from keygroups.resolve import GroupState
from keygroups.schemas import MEMBERSHIP
from node_adapter import state_db
from node_adapter.client_store import ClientStore, InnerRow, Transaction
from node_adapter.embedded import EmbeddedNode
from node_adapter.errors import NodeAdapterError, NodeUnavailable, PublishRefused, QueryRefused
from node_adapter.group import Group
from node_adapter.interface import Changes, Node
from node_adapter.key_groups import KeyGroup
from node_adapter.types import DocumentView
from p2panda.document import Document, build_document
from p2panda.entry import sign_entry
from p2panda.errors import P2PandaError
from p2panda.hash import Hash
from p2panda.identity import KeyPair, PublicKey
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.node.publish import NextArgs
from p2panda.operation import Operation, OperationAction, decode_operation, encode_operation
from p2panda.operation.value import OperationValue, Relation
from p2panda.schema import Schema, validate_operation
from secret_group.convergence import CommitInfo, R, RejoinRequest, keep, open_rejoins, plan, winning_path
from secret_group.documents import CommitDoc, EnvelopeDoc, GroupDoc, KeyPackageDoc, Mode
from secret_group.engine import Engine, GroupRecord
from secret_group.errors import (
    HistoryUnavailable,
    MalformedDocument,
    NotAuthorised,
    NotMember,
    ReplayedWelcome,
    SecretGroupError,
    UnknownSchema,
)
from secret_group.mls import MlsError, MlsMember
from secret_group.schemas import (
    COMMIT,
    COMMIT_SCHEMA,
    ENVELOPE,
    ENVELOPE_SCHEMA,
    INNER_SCHEMAS,
    KEY_PACKAGE,
    KEY_PACKAGE_SCHEMA,
    SECRET_GROUP_SCHEMA,
)

__all__ = ["Client", "ClientEvent", "KEY_PACKAGE_TARGET"]

log = logging.getLogger("node_adapter.client")

KEY_PACKAGE_TARGET = 3  # single-use key packages kept published, besides the last-resort one
_PAGE = 200
# An embedded node filters a collection in memory for every page, so a sweep of a long history costs
# pages x documents: in-process, one page holds them all (a remote node's GraphQL limits apply).
_EMBEDDED_PAGE = 1 << 30
STAGGER = 0.5  # seconds between the managers' background reconciles (S1)


@dataclass(frozen=True, slots=True)
class ClientEvent:
    """Something changed in a group: `kind` is "joined", "commit", "removed", "message", "refused",
    "membership" or "rollback"; `document_id` names the envelope or commit when there is one."""

    kind: str
    group_id: str
    document_id: str | None = None


def _refusal(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _encode_doc(doc: CommitDoc | EnvelopeDoc) -> bytes:
    return cbor2.dumps(asdict(doc), canonical=True)


def _decode_commit(data: bytes) -> CommitDoc:
    v = cbor2.loads(data)
    for name in ("added", "key_packages", "key_group_tips"):
        v[name] = tuple(v[name])
    return CommitDoc(**v)


def _decode_envelope(data: bytes) -> EnvelopeDoc:
    return EnvelopeDoc(**cbor2.loads(data))


def _readers(state: GroupState) -> set[str]:
    return {k for k, level in _keys(state.members).items() if level >= Level.READ}


def _path(root: str, tip: str, docs: Mapping[str, CommitDoc]) -> list[str] | None:
    """The commits from `root` down to `tip`; None while one of them is not known here."""
    path = [tip]
    while path[-1] != root:
        doc = docs.get(path[-1])
        if doc is None or len(path) > len(docs) + 1:
            return None
        path.append(doc.parent)
    return path[::-1]


def _keys(levels: Mapping[Member, Level]) -> dict[str, Level]:
    return {m.id: level for m, level in levels.items() if m.kind == "key"}


class Client:
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
        self._lost: set[str] = set()  # J1: groups whose branch lost deeper than our snapshots
        self._asked: dict[str, str] = {}  # J1: group -> the winning tip our last rejoin request named
        self.last_error: str | None = None

    # --- lifecycle ----------------------------------------------------------------------------------

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

    @property
    def store(self) -> ClientStore:
        if self._store is None:
            raise NodeUnavailable("the client is not started")
        return self._store

    @property
    def member(self) -> MlsMember:
        if self._member is None:
            raise NodeUnavailable("the client is not started")
        return self._member

    # --- events -------------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[ClientEvent]:
        """Events from now on, until the client stops."""
        queue: asyncio.Queue[ClientEvent] = asyncio.Queue()
        self._listeners.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._listeners.discard(queue)

    def _emit(self, kind: str, group_id: str, document_id: str | None = None) -> None:
        event = ClientEvent(kind, group_id, document_id)
        for queue in self._listeners:
            queue.put_nowait(event)

    # --- groups -------------------------------------------------------------------------------------

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

    def record(self, group_id: str) -> GroupRecord:
        record = self.store.group(group_id)
        if record is None:
            raise NotMember(f"group {group_id} is not known to this client")
        return record

    # --- writing ------------------------------------------------------------------------------------

    async def _next_args(self, view_id: DocumentViewId | None) -> NextArgs:
        try:
            return await self.node.next_args(self.key_pair.public_key, view_id)
        except QueryRefused as exc:
            raise PublishRefused(str(exc)) from exc

    def _sign(self, args: NextArgs, operation: Operation) -> tuple[str, bytes, bytes]:
        payload = encode_operation(operation)
        entry = sign_entry(
            self.key_pair,
            log_id=args.log_id,
            seq_num=args.seq_num,
            payload=payload,
            backlink=args.backlink,
            skiplink=args.skiplink,
        )
        return Hash.of(entry).hex(), entry, payload

    def _persist(self, writes: Any, outbox: tuple[str, bytes, bytes] | None = None) -> None:
        """One transaction: the MLS journal, `writes(tx)` and the outbox row. On failure the in-memory MLS
        state is reloaded from the store, so memory never runs ahead of what is stored."""
        changes = self.member.take_changes()
        try:
            with self.store.write() as tx:
                tx.mls(changes)
                writes(tx)
                if outbox is not None:
                    tx.outbox(*outbox)
        except BaseException:
            self._reload_member()
            raise

    def _reload_member(self) -> None:
        self._member = MlsMember(self.key_pair.private_key(), self.store.mls_items())
        self.engine = Engine(self._member)

    def _discard(self) -> None:
        self.member.discard_changes()

    async def _flush(self) -> None:
        """Publish pending outbox rows in order; stops at the first the node cannot take now."""
        for row in self.store.outbox("pending"):
            try:
                await self.node.publish(row.entry, row.operation)
            except PublishRefused as exc:
                if await self._node_holds(row.id):  # stored before a crash took the acknowledgement
                    self.store.set_outbox_state(row.id, "sent")
                    continue
                self.store.set_outbox_state(row.id, "failed", str(exc))
                log.warning("node refused %s: %s", row.id, exc)
                continue
            self.store.set_outbox_state(row.id, "sent")

    async def _node_holds(self, operation_id: str) -> bool:
        try:
            return await self.node.operation_status(Hash.from_hex(operation_id)) is not None
        except NodeAdapterError:  # a node without operationStatus: its refusal text is all there is
            return False

    async def _publish_plain(self, operation: Operation, view_id: DocumentViewId | None, writes: Any = None) -> str:
        """Sign and publish an operation that changes no MLS state (key packages and their deletion)."""
        args = await self._next_args(view_id)
        doc_id, entry, payload = self._sign(args, operation)
        self._persist(writes or (lambda tx: None), (doc_id, entry, payload))
        await self._flush()
        return doc_id

    async def ensure_key_packages(self) -> None:
        """Keep KEY_PACKAGE_TARGET unused key packages and one last-resort package published."""
        async with self._lock:
            await self._flush()
            mine = self.store.key_packages()
            unused = [kp for kp in mine if not kp[2] and not kp[1]]
            has_last_resort = any(kp[1] for kp in mine)
            wanted = [False] * max(0, KEY_PACKAGE_TARGET - len(unused)) + ([] if has_last_resort else [True])
            for last_resort in wanted:
                fields: dict[str, OperationValue] = {
                    "key_package": self.member.key_package(),
                    "last_resort": last_resort,
                }
                args = await self._next_args(None)
                doc_id, entry, payload = self._sign(args, Operation.create(KEY_PACKAGE_SCHEMA.id, fields))
                self._persist(lambda tx, d=doc_id, lr=last_resort: tx.key_package(d, lr), (doc_id, entry, payload))
                await self._flush()

    async def _retire_key_packages(self, ids: Iterable[str]) -> None:
        """Delete the single-use key packages a welcome consumed (under the lock)."""
        mine = {kp[0]: kp for kp in self.store.key_packages()}
        for kp_id in ids:
            kp = mine.get(kp_id)
            if kp is None or kp[2]:
                continue
            with self.store.write() as tx:
                tx.key_package_used(kp_id)
            if not kp[1]:
                view = DocumentViewId([Hash.from_hex(kp_id)])
                with contextlib.suppress(PublishRefused):  # already deleted elsewhere
                    await self._publish_plain(Operation.delete(KEY_PACKAGE_SCHEMA.id, view), view)

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

    async def _held(self, record: GroupRecord) -> bool:
        """Q1: new operations wait while MLS has someone the key group removed, or our branch lost (J1)."""
        if record.id in self._lost:
            return True
        _owner, levels = await self.access(record.owner)
        readers = {k for k, level in levels.items() if level >= Level.READ} | {self.me}
        return bool({k.hex() for k in self.engine.mls(record).members()} - readers)

    def _queue(self, record: GroupRecord, document_id: str | None, operation: Operation, plaintext: bytes) -> str:
        """Q1: keep an operation to seal later, under a local id (there is no envelope yet to name it)."""
        queued_id = Hash.of(b"queued " + record.id.encode() + plaintext + os.urandom(16)).hex()
        row = InnerRow(
            queued_id,
            record.id,
            document_id or queued_id,
            self.me,
            str(operation.schema_id),
            plaintext,
            self._lamport_of(operation),
            -1,  # not sealed in any epoch: a rollback has nothing of it to send again
        )

        def writes(tx: Transaction) -> None:
            tx.inner(row)
            tx.digest(record.id, self.me, hashlib.sha256(plaintext).digest(), queued_id)
            tx.processed(queued_id, record.id, "envelope", "queued")  # its outbox state reads "queued"

        self._persist(writes)
        return queued_id

    async def _send_queued(self, group_id: str) -> None:
        """Q1: seal and publish what was queued, in order, once nothing holds it any more (under the lock)."""
        record = self.record(group_id)
        queued = self.store.own_envelopes(group_id, "queued")
        if not queued or not record.active or await self._held(record):
            return
        for row in queued:
            args = await self._next_args(None)
            epoch, envelope_id, entry, payload = self._seal_envelope(record, args, row.operation)

            def writes(
                tx: Transaction, row: InnerRow = row, envelope_id: str = envelope_id, epoch: int = epoch
            ) -> None:
                tx.processed(envelope_id, group_id, "envelope", "own")
                tx.processed(row.id, group_id, "envelope", "resent", envelope_id)
                tx.inner_epoch(row.id, epoch)  # its outbox state is now its envelope's

            self._persist(writes, (envelope_id, entry, payload))
            await self._flush()
            record = self.record(group_id)

    def _seal_envelope(self, record: GroupRecord, args: NextArgs, plaintext: bytes) -> tuple[int, str, bytes, bytes]:
        """Encrypt an inner operation for the group's current epoch and sign its envelope: (epoch, envelope
        id, entry, operation). The MLS change stays in memory until the caller persists or discards it."""
        try:
            epoch, ciphertext = self.engine.seal(record, plaintext)
        except (MlsError, SecretGroupError):
            self._discard()
            raise
        fields: dict[str, OperationValue] = {
            "group": Relation(DocumentId.from_hex(record.id)),
            "epoch": epoch,
            "ciphertext": ciphertext,
        }
        envelope_id, entry, payload = self._sign(args, Operation.create(ENVELOPE_SCHEMA.id, fields))
        return epoch, envelope_id, entry, payload

    def next_lamport(self) -> int:
        return self.store.lamport() + 1

    @staticmethod
    def _lamport_of(operation: Operation) -> int:
        value = (operation.fields or {}).get("lamport")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    # --- membership ---------------------------------------------------------------------------------

    async def access(self, owner: str) -> tuple[KeyGroup, dict[str, Level]]:
        """The owner key group and its keys' levels with nested groups flattened (N1-N3)."""
        cached = self._access.get(owner)
        if cached is None:
            cached = self._access[owner] = await self._resolve_access(owner)
        return cached

    def forget_access(self) -> None:
        self._access.clear()

    async def _resolve_access(self, owner: str) -> tuple[KeyGroup, dict[str, Level]]:
        top = await self.node.key_group(owner)
        states: dict[str, GroupState] = {owner: top.state}
        frontier = [m.id for m in top.state.members if m.kind == "group"]
        while frontier:
            group_id = frontier.pop()
            if group_id in states or len(states) > 64:
                continue
            try:
                nested = await self.node.key_group(group_id)
            except QueryRefused:
                continue
            states[group_id] = nested.state
            frontier.extend(m.id for m in nested.state.members if m.kind == "group")
        access = flatten(owner, states.get)
        return top, dict(access.levels) if access is not None else {}

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

    async def _reconcile(self, group_id: str, *, rotate: bool = False) -> bool:
        self.forget_access()  # act on the key group as the node has it now
        record = self.record(group_id)
        if not record.active:
            if rotate:
                raise NotMember(f"{self.me} is no longer a member of group {group_id}")
            return False
        if group_id in self._lost:  # J1: never commit on a branch that lost
            if rotate:
                raise NotMember(f"{self.me} waits to be re-added to group {group_id}: its branch lost")
            return False
        owner, _levels = await self.access(record.owner)
        if _keys(owner.state.members).get(self.me) != Level.MANAGE:
            if rotate:
                raise NotAuthorised(f"{self.me} does not manage key group {record.owner}")
            return False
        removes, adds = await self._difference(record)
        if not adds and not removes and not rotate:
            return False
        await self._flush()
        args = await self._next_args(None)
        try:
            planned = self.engine.commit(record, adds, removes, tuple(sorted(owner.state.tips)))
        except (MlsError, SecretGroupError):
            self._discard()
            raise
        fields = dict(planned.fields)
        fields["group"] = Relation(DocumentId.from_hex(group_id))
        commit_id, entry, payload = self._sign(args, Operation.create(COMMIT_SCHEMA.id, fields))  # type: ignore[arg-type]
        new_record = replace(planned.record, tip=commit_id)
        own = CommitDoc(
            commit_id,
            self.me,
            group_id,
            record.tip,
            int(planned.fields["epoch"]),  # type: ignore[call-overload]
            bytes(planned.fields["commit"]),  # type: ignore[call-overload]
            bytes(planned.fields["welcome"]) or None,  # type: ignore[call-overload]
            planned.added,
            tuple(kp.id for kp in adds),
            tuple(sorted(owner.state.tips)),
            bytes(planned.fields["handover"]) or None,  # type: ignore[call-overload]
        )
        items = self.member.group_items(new_record.mls_id)
        depth = self._depth(group_id, record.tip) + 1
        kept = keep(self.store.snapshot_depths(group_id) | {commit_id: depth}, depth)

        def writes(tx: Transaction) -> None:
            tx.group(new_record)
            tx.processed(commit_id, group_id, "commit", "applied")
            tx.commit_doc(commit_id, group_id, _encode_doc(own))
            tx.snapshot(new_record, depth, items, kept)

        self._persist(writes, (commit_id, entry, payload))
        await self._flush()
        self._emit("commit", group_id, commit_id)
        if removes and (await self._difference(self.record(group_id)))[1]:  # the additions, in a commit of their own
            await self._reconcile(group_id)
        await self._send_queued(group_id)  # Q1: the removal is committed
        return True

    async def _difference(self, record: GroupRecord) -> tuple[list[str], list[KeyPackageDoc]]:
        """What a commit would change: the MLS members to remove, else the key packages of those to add
        (members without a published key package stay pending; removals first, alone: MixedCommit)."""
        _owner, levels = await self.access(record.owner)
        current = {k.hex() for k in self.engine.mls(record).members()}
        wanted = {k for k, level in levels.items() if level >= Level.READ} | {self.me}
        rejoins = {r.author: r.key_package for r in self._open_rejoins(record) if r.author in wanted}  # J2
        removes = sorted((current - wanted) | (current & set(rejoins)))
        adds: list[KeyPackageDoc] = []
        for key in sorted(wanted - current) if not removes else ():
            package = await self._requested_package(key, rejoins[key]) if key in rejoins else None
            package = package or await self._key_package_of(key)
            if package is not None:
                adds.append(package)
        return removes, adds

    def _open_rejoins(self, record: GroupRecord) -> list[RejoinRequest]:
        """J2: rejoin requests naming a commit on our path that no commit below it honoured."""
        docs = [_decode_commit(b) for b in self.store.commit_docs(record.id)]
        requests = [
            RejoinRequest(d.id, d.author, d.parent, d.key_packages[0])
            for d in docs
            if not d.commit and len(d.key_packages) == 1
        ]
        if not requests:
            return []
        path = _path(record.id, record.tip, {d.id: d for d in docs if d.commit})
        if path is None:
            return []
        by_id = {d.id: d for d in docs}
        return open_rejoins(requests, path, {c: by_id[c].added for c in path[1:]})

    async def _requested_package(self, key: str, package_id: str) -> KeyPackageDoc | None:
        view = await self.node.document(KEY_PACKAGE_SCHEMA, DocumentId.from_hex(package_id))
        if view is None:
            return None  # not here yet (or deleted: used by a welcome): another package of the key serves
        try:
            package = KeyPackageDoc.parse(view.id.hex(), view.owner.hex(), view.fields)
        except MalformedDocument as exc:
            log.info("skipping requested key package: %s", exc)
            return None
        self.engine.check_key_package(package, key)
        return package

    async def _key_package_of(self, key: str) -> KeyPackageDoc | None:
        """A key package `key` published: the lowest-id single-use one, else its last-resort one."""
        page = await self.node.query(KEY_PACKAGE_SCHEMA, meta={"owner": {"eq": key}}, first=_PAGE)
        packages = []
        for view in page.documents:
            try:
                packages.append(KeyPackageDoc.parse(view.id.hex(), view.owner.hex(), view.fields))
            except MalformedDocument as exc:
                log.info("skipping key package: %s", exc)
        packages.sort(key=lambda p: (p.last_resort, p.id))
        for package in packages:
            self.engine.check_key_package(package, key)
            return package
        return None

    # --- following the node -------------------------------------------------------------------------

    async def _follow(self) -> None:
        """Live changes one by one; when the stream ends (a subscriber that fell behind is cut off by
        the node, or the node went away) subscribe again and sweep, so nothing is missed."""
        live = self._changes is not None
        while True:
            try:
                if not self.synced.is_set():
                    await self.sync()
                    continue
                if self._changes is None:
                    await asyncio.sleep(self._poll_interval)
                    if live:
                        await self._subscribe()
                    await self.sync()
                    continue
                async for change in self._changes:
                    await self._on_change(change.schema_id, change.document_id.hex())
                log.info("change stream ended: subscribing again")
                await self._changes.close()
                self._changes = None
            except asyncio.CancelledError:
                raise
            except (P2PandaError, OSError) as exc:  # the node went away or refused: retry, never crash
                self.last_error = _refusal(exc)
                log.warning("following the node: %s", self.last_error)
                if self._changes is not None:
                    await self._changes.close()
                    self._changes = None

    async def _subscribe(self) -> None:
        self._changes = await self.node.subscribe(frozenset({COMMIT, ENVELOPE, MEMBERSHIP, KEY_PACKAGE}))

    async def _on_change(self, schema_id: str, document_id: str) -> None:
        if schema_id == COMMIT:
            view = await self.node.document(COMMIT_SCHEMA, DocumentId.from_hex(document_id))
            if view is not None:
                async with self._lock:
                    group_id = await self._ingest_commit(view)
                    if group_id is not None:
                        await self._drain(group_id)
        elif schema_id == ENVELOPE:
            view = await self.node.document(ENVELOPE_SCHEMA, DocumentId.from_hex(document_id))
            if view is not None:
                async with self._lock:
                    group_id = self._ingest_envelope(view)
                    if group_id is not None:
                        await self._drain(group_id)
        elif schema_id in (MEMBERSHIP, KEY_PACKAGE):
            if schema_id == MEMBERSHIP:
                self.forget_access()
            for record in self.store.groups():
                if record.active:
                    self._emit("membership", record.id)
                    await self._schedule_reconcile(record)
                    if schema_id == MEMBERSHIP:
                        async with self._lock:
                            await self._send_queued(record.id)  # Q1: the removal may have been undone

    async def _schedule_reconcile(self, record: GroupRecord) -> None:
        """S1-S3: a membership difference this client did not make is committed by one manager, staggered."""
        if record.id in self._staggered or record.id in self._lost:
            return  # S3: one waiting reconcile per group; it looks at the key group as it is when it fires
        rank = await self._stagger_rank(record)
        if rank is None:
            return
        task = asyncio.create_task(self._staggered_reconcile(record.id, record.tip, (rank + 1) * self._stagger))
        self._staggered[record.id] = task
        task.add_done_callback(lambda _task: self._staggered.pop(record.id, None))

    async def _staggered_reconcile(self, group_id: str, parent: str, delay: float) -> None:
        while True:
            await asyncio.sleep(delay)
            async with self._lock:
                record = self.record(group_id)
                if record.tip == parent and not self._has_child(group_id, parent):
                    try:
                        await self._reconcile(group_id)
                    except (P2PandaError, MlsError, OSError) as exc:  # a background step: recorded, retried later
                        self.last_error = _refusal(exc)
                        log.warning("staggered reconcile of %s: %s", group_id, self.last_error)
                    return
                # S2: a commit on that parent arrived; wait again on the new tip while a difference remains.
                rank = await self._stagger_rank(record) if record.active else None
                if rank is None or not any(await self._difference(record)):
                    return
                parent, delay = record.tip, (rank + 1) * self._stagger

    def _has_child(self, group_id: str, parent: str) -> bool:
        docs = (_decode_commit(b) for b in self.store.commit_docs(group_id))
        return any(d.parent == parent and d.commit for d in docs)  # a rejoin request is no commit (J1)

    async def _stagger_rank(self, record: GroupRecord) -> int | None:
        """S1: this client's place among the managers that are MLS members, ordered by a hash of the tip
        and their key (so the first to act changes from epoch to epoch), or None if it does not manage."""
        owner, _ = await self.access(record.owner)
        managers = {k for k, level in _keys(owner.state.members).items() if level == Level.MANAGE}
        current = {k.hex() for k in self.engine.mls(record).members()}
        current -= {r.author for r in self._open_rejoins(record)}  # J2: they have no state to commit with
        order = sorted(managers & current, key=lambda k: hashlib.sha256(f"{record.tip}:{k}".encode()).digest())
        return order.index(self.me) if self.me in order else None

    async def sync(self) -> None:
        """A full sweep: welcomes for this identity, then every commit and envelope of every group."""
        async with self._lock:
            await self._flush()
            welcomed = False
            async for view in self._all(COMMIT_SCHEMA, {"added": {"contains": self.me}}):
                if self.store.status(view.id.hex()) is None:
                    welcomed = await self._ingest_commit(view) is not None or welcomed
            for record in self.store.groups():
                if record.active:
                    await self._sweep(record.id)
        self.synced.set()
        if welcomed:
            await self.ensure_key_packages()

    async def _sweep(self, group_id: str) -> None:
        """Every commit and envelope of a group the node holds, then the drain (under the lock)."""
        known = self.store.known(group_id)  # one read, not two per document of a long history
        async for view in self._all(COMMIT_SCHEMA, {"group": {"eq": group_id}}):
            if view.id.hex() not in known:
                await self._ingest_commit(view)
        async for view in self._all(ENVELOPE_SCHEMA, {"group": {"eq": group_id}}):
            if view.id.hex() not in known:
                self._ingest_envelope(view)
        await self._drain(group_id)

    async def _all(self, schema: Schema, filter: Mapping[str, Mapping[str, Any]]) -> AsyncIterator[DocumentView]:
        after: str | None = None
        while True:
            first = _EMBEDDED_PAGE if isinstance(self.node, EmbeddedNode) else _PAGE
            page = await self.node.query(schema, filter=filter, first=first, after=after)
            for view in page.documents:
                yield view
            if not page.has_next:
                return
            after = page.end_cursor

    def _refuse_malformed(self, view: DocumentView, kind: str, exc: MalformedDocument) -> None:
        """D1-D4 failed: recorded as refused when it names a group of ours, ignored otherwise."""
        group = (view.fields or {}).get("group")
        if isinstance(group, Relation) and self.store.group(group.document_id.hex()) is not None:
            with self.store.write() as tx:
                tx.processed(view.id.hex(), group.document_id.hex(), kind, "refused", _refusal(exc))
            self._emit("refused", group.document_id.hex(), view.id.hex())

    def _known(self, doc_id: str) -> bool:
        return self.store.status(doc_id) is not None or self.store.is_pending(doc_id)

    async def _ingest_commit(self, view: DocumentView) -> str | None:
        """Park a commit of a known group, or join by its welcome; returns the group to drain."""
        doc_id = view.id.hex()
        if self._known(doc_id):
            return None
        try:
            doc = CommitDoc.parse(doc_id, view.owner.hex(), view.fields)
        except MalformedDocument as exc:
            self._refuse_malformed(view, "commit", exc)
            return None
        record = self.store.group(doc.group)
        if record is None:
            if self.me in doc.added and await self._join(doc):
                await self._sweep(doc.group)  # what arrived before we could read it
                return doc.group
            return None
        with self.store.write() as tx:
            if doc.commit:
                tx.pending(doc.id, doc.group, "commit", doc.epoch, doc.parent, _encode_doc(doc))
            else:  # J1: a rejoin request, kept for J2, never ranked or applied
                tx.processed(doc.id, doc.group, "commit", "request")
            tx.commit_doc(doc.id, doc.group, _encode_doc(doc))
        return doc.group

    def _ingest_envelope(self, view: DocumentView) -> str | None:
        doc_id = view.id.hex()
        if self._known(doc_id):
            return None
        try:
            doc = EnvelopeDoc.parse(doc_id, view.owner.hex(), view.fields)
        except MalformedDocument as exc:
            self._refuse_malformed(view, "envelope", exc)
            return None
        if self.store.group(doc.group) is None:
            return None
        with self.store.write() as tx:
            tx.pending(doc.id, doc.group, "envelope", doc.epoch, None, _encode_doc(doc))
        return doc.group

    async def _join(self, doc: CommitDoc) -> bool:
        view = await self.node.document(SECRET_GROUP_SCHEMA, DocumentId.from_hex(doc.group))
        if view is None:
            return False  # the group document has not arrived yet; the next sweep tries again
        try:
            group = GroupDoc.parse(doc.group, view.owner.hex(), view.fields)
            record = self.engine.join(group, doc)
        except (MlsError, SecretGroupError) as exc:
            self._discard()
            log.info("welcome of commit %s refused: %s", doc.id, exc)
            if not isinstance(exc, ReplayedWelcome):
                self.last_error = _refusal(exc)
            return False

        items = self.member.group_items(record.mls_id)

        def writes(tx: Transaction) -> None:
            tx.group(record)
            tx.processed(doc.id, doc.group, "commit", "applied")
            tx.commit_doc(doc.id, doc.group, _encode_doc(doc))
            tx.snapshot(record, self._depth(doc.group, doc.id), items, set())

        self._persist(writes)
        await self._retire_key_packages(doc.key_packages)
        self._emit("joined", doc.group, doc.id)
        return True

    async def _drain(self, group_id: str) -> None:
        """Process what is pending for a group in order (C1-C3) until nothing more can be done."""
        levels: dict[str, Level] | None = None
        owner: KeyGroup | None = None
        while True:
            record = self.record(group_id)
            if levels is None or owner is None:
                owner, levels = await self.access(record.owner)
            progressed = False
            for _, _, _, data in self.store.pending(group_id, "envelope"):  # C1
                envelope = _decode_envelope(data)
                if record.active and self.engine.opens_later(record, envelope):
                    continue
                self._open(record, envelope, levels)
                progressed = True
            if await self._converge(self.record(group_id), owner):  # C2
                progressed = True
            if not progressed:
                self._link(group_id)
                await self._resend(group_id)
                await self._send_queued(group_id)  # Q1
                record = self.record(group_id)
                manages = levels.get(self.me) == Level.MANAGE
                if manages and record.active and group_id not in self._lost and any(await self._difference(record)):
                    await self._schedule_reconcile(record)  # S3, rule 4: what lost a race happens anyway
                return

    def _depth(self, group_id: str, commit_id: str) -> int:
        """Commits from the group id down to `commit_id` (0 for the group id)."""
        docs = {d.id: d for d in (_decode_commit(b) for b in self.store.commit_docs(group_id))}
        path = _path(group_id, commit_id, docs)
        return len(path) - 1 if path is not None else 0

    async def _converge(self, record: GroupRecord, owner: KeyGroup) -> bool:
        """C2 (`secret_group.convergence`): one step towards the winning path; False when there is none."""
        group_id = record.id
        docs = {d.id: d for d in (_decode_commit(b) for b in self.store.commit_docs(group_id)) if d.commit}  # J1
        infos = []
        for doc in docs.values():
            state = owner.state_at(doc.key_group_tips)
            if state is None:
                continue  # C3
            parent = docs.get(doc.parent)
            before = owner.state_at(parent.key_group_tips) if parent is not None else None
            removes = before is not None and bool(_readers(before) - _readers(state))
            status = self.store.status(doc.id)
            invalid = status is not None and status[0] == "refused"
            manages = _keys(state.members).get(doc.author) == Level.MANAGE
            infos.append(CommitInfo(doc.id, doc.parent, doc.author, removes, manages, invalid))
        winner = winning_path(group_id, infos)
        applied = _path(group_id, record.tip, docs)
        if applied is None:
            return False
        depths = self.store.snapshot_depths(group_id)
        decision = plan(applied, winner, depths)
        if decision.kind == "rollback":
            assert decision.restore is not None
            self._rollback(record, decision.restore, len(applied) - 1)
            return True
        if decision.kind == "lost":  # R3: joined on (or left by) a branch that lost: join the winner's welcome
            self._lost.add(group_id)
            welcomes = [c for c in winner[1:] if c not in applied and self.me in docs[c].added]
            if welcomes and await self._rejoin(record, docs[welcomes[-1]], winner, applied):
                return True
            await self._ask_rejoin(record, winner, owner)
            self.last_error = f"group {group_id}: our branch lost deeper than {R} commits; waiting to be re-added"
            return False
        if decision.kind == "idle" or not record.active:
            return False
        next_id = decision.replay[0]
        if next_id in depths:  # R5: applied before, or our own: restore it
            self._restore(group_id, next_id)
            return True
        return self._apply(record, docs[next_id], owner, len(applied))

    def _restore(self, group_id: str, commit_id: str, resend_after: bool = False) -> None:
        _depth, items, snapshot = self.store.snapshots(group_id)[commit_id]
        self.member.restore_group(snapshot.mls_id, items)
        epoch = self.engine.mls(snapshot).epoch if snapshot.active else -1
        own = [r for r in self.store.inner_rows(group_id) if r.author == self.me and r.epoch > epoch]

        def writes(tx: Transaction) -> None:
            tx.group(snapshot)
            tx.processed(commit_id, group_id, "commit", "applied")
            if resend_after:
                tx.unpark(group_id)
                for row in own:  # sealed on the branch left: sent again on the winner (rule 4)
                    if self.store.status(row.id) == ("own", None):
                        tx.set_status(row.id, "resend")

        self._persist(writes)

    def _rollback(self, record: GroupRecord, fork: str, tip_depth: int) -> None:
        """R2: the tip's snapshot again (its ratchets as far as they got, R5), then the fork's state."""
        if record.active:
            items = self.member.group_items(record.mls_id)
            kept = set(self.store.snapshot_depths(record.id))
            self._persist(lambda tx: tx.snapshot(record, tip_depth, items, kept))
        self._restore(record.id, fork, resend_after=True)
        self._emit("rollback", record.id, fork)

    async def _ask_rejoin(self, record: GroupRecord, winner: list[str], owner: KeyGroup) -> None:
        """J1: a fresh key package and a rejoin request naming the winning tip, once per tip, while the key
        group still gives us read level."""
        tip = winner[-1]
        if self._asked.get(record.id) == tip:
            return
        _owner, levels = await self.access(record.owner)
        if levels.get(self.me, 0) < Level.READ:
            return
        package: dict[str, OperationValue] = {"key_package": self.member.key_package(), "last_resort": False}
        args = await self._next_args(None)
        package_id, entry, payload = self._sign(args, Operation.create(KEY_PACKAGE_SCHEMA.id, package))
        self._persist(lambda tx: tx.key_package(package_id, False), (package_id, entry, payload))
        await self._flush()
        tips = tuple(sorted(owner.state.tips))
        fields: dict[str, OperationValue] = {
            "group": Relation(DocumentId.from_hex(record.id)),
            "parent": tip,
            "epoch": len(winner) - 1,
            "commit": b"",
            "welcome": b"",
            "added": "",
            "key_packages": package_id,
            "key_group_tips": " ".join(tips),
            "handover": b"",
        }
        args = await self._next_args(None)
        request_id, entry, payload = self._sign(args, Operation.create(COMMIT_SCHEMA.id, fields))
        doc = CommitDoc(request_id, self.me, record.id, tip, len(winner) - 1, b"", None, (), (package_id,), tips, None)

        def writes(tx: Transaction) -> None:
            tx.processed(request_id, record.id, "commit", "request")
            tx.commit_doc(request_id, record.id, _encode_doc(doc))

        self._persist(writes, (request_id, entry, payload))
        await self._flush()
        self._asked[record.id] = tip
        log.info("group %s: our branch lost; asked to be re-added at %s", record.id, tip)

    async def _rejoin(self, record: GroupRecord, doc: CommitDoc, winner: list[str], applied: list[str]) -> bool:
        view = await self.node.document(SECRET_GROUP_SCHEMA, DocumentId.from_hex(record.id))
        if view is None:
            return False
        self.member.restore_group(record.mls_id, [])  # our state of the lost branch goes (R3)
        try:
            new = self.engine.join(GroupDoc.parse(record.id, view.owner.hex(), view.fields), doc)
        except (MlsError, SecretGroupError) as exc:
            self._discard()
            self.last_error = _refusal(exc)
            return False
        items = self.member.group_items(new.mls_id)
        depth = winner.index(doc.id)
        fork = next((i for i, (a, b) in enumerate(zip(applied, winner, strict=False)) if a != b), len(applied)) - 1
        # J3: own operations sealed on the branch that lost (epochs after the fork) are sent again.
        own = [r for r in self.store.inner_rows(record.id) if r.author == self.me and r.epoch > fork]

        def writes(tx: Transaction) -> None:
            tx.group(new)
            tx.processed(doc.id, record.id, "commit", "applied")
            tx.snapshot(new, depth, items, {doc.id})
            for row in own:
                if self.store.status(row.id) == ("own", None):
                    tx.set_status(row.id, "resend")

        self._persist(writes)
        self._lost.discard(record.id)
        self._asked.pop(record.id, None)
        await self._retire_key_packages(doc.key_packages)
        self._emit("joined", record.id, doc.id)
        return True

    async def _resend(self, group_id: str) -> None:
        """Rule 4: own operations sealed on a branch that lost, sealed again in the current epoch."""
        record = self.record(group_id)
        if not record.active:
            return
        for row in self.store.own_envelopes(group_id, "resend"):
            args = await self._next_args(None)
            _, envelope_id, entry, payload = self._seal_envelope(record, args, row.operation)

            def writes(tx: Transaction, row: InnerRow = row, envelope_id: str = envelope_id) -> None:
                tx.processed(envelope_id, group_id, "envelope", "own")
                tx.processed(row.id, group_id, "envelope", "resent", envelope_id)

            self._persist(writes, (envelope_id, entry, payload))
            await self._flush()

    def _link(self, group_id: str) -> None:
        """Give updates and deletes that arrived before the operation they follow their document."""
        while True:
            linked = 0
            for row in self.store.inner_rows(group_id, document_id=""):
                previous = decode_operation(row.operation).previous
                assert previous is not None
                document_id = self.store.document_of(next(iter(previous)).hex())
                if document_id:
                    with self.store.write() as tx:
                        tx.link(row.id, document_id)
                    linked += 1
            if not linked:
                return

    def _apply(self, record: GroupRecord, doc: CommitDoc, owner: KeyGroup, depth: int) -> bool:
        """Apply one commit on the tip; False while it waits for its key-group changes (C3)."""
        state = owner.state_at(doc.key_group_tips)
        if state is None:
            return False
        try:
            applied = self.engine.apply(record, doc, _keys(state.members))
        except (MlsError, SecretGroupError) as exc:
            self._discard()
            with self.store.write() as tx:
                tx.processed(doc.id, record.id, "commit", "refused", _refusal(exc))
            self._emit("refused", record.id, doc.id)
            return True

        items = self.member.group_items(record.mls_id) if applied.record.active else []
        kept = keep(self.store.snapshot_depths(record.id) | {doc.id: depth}, depth)

        def writes(tx: Transaction) -> None:
            tx.group(applied.record)
            tx.processed(doc.id, record.id, "commit", "applied")
            if applied.record.active:  # R4, in the merge's transaction
                tx.snapshot(applied.record, depth, items, kept)

        self._persist(writes)
        self._emit("commit" if applied.record.active else "removed", record.id, doc.id)
        return True

    def _open(self, record: GroupRecord, doc: EnvelopeDoc, levels: Mapping[str, Level]) -> None:
        """Open one envelope and store its inner operation, or record why not."""
        try:
            if doc.author == self.me:
                raise MalformedDocument(f"envelope {doc.id} is our own but was not stored as sent")
            opened = self.engine.open(record, doc, levels)
            row = self._inner_row(record, doc, opened.plaintext)
        except HistoryUnavailable as exc:
            self._discard()
            with self.store.write() as tx:
                tx.processed(doc.id, record.id, "envelope", "unavailable", str(exc))
            return
        except (MlsError, P2PandaError) as exc:
            self._discard()
            with self.store.write() as tx:
                tx.processed(doc.id, record.id, "envelope", "refused", _refusal(exc))
                if isinstance(exc, MlsError):  # maybe sealed on another branch: tried again after a rollback
                    tx.park(doc.id, record.id, doc.epoch, _encode_doc(doc))
            self._emit("refused", record.id, doc.id)
            return
        digest = hashlib.sha256(opened.plaintext).digest()
        if self.store.digest_of(record.id, doc.author, digest) is not None:  # a re-sent copy: shown once

            def duplicate(tx: Transaction) -> None:
                tx.processed(doc.id, record.id, "envelope", "duplicate")

            self._persist(duplicate)
            return

        def writes(tx: Transaction) -> None:
            tx.inner(row)
            tx.digest(record.id, doc.author, digest, doc.id)
            tx.processed(doc.id, record.id, "envelope", "opened")

        self._persist(writes)
        self._emit("message", record.id, doc.id)

    def _inner_row(self, record: GroupRecord, doc: EnvelopeDoc, plaintext: bytes) -> InnerRow:
        operation = decode_operation(plaintext)  # OP1-OP10
        schema = self.schemas.get(str(operation.schema_id))
        if schema is not None:
            validate_operation(operation, schema)  # S1-S4
        document_id = doc.id
        if operation.action is not OperationAction.CREATE:
            assert operation.previous is not None
            first = next(iter(operation.previous)).hex()
            # "" until the operation it follows is known here (it may arrive later): see `_link`.
            document_id = self.store.document_of(first) or ""
        return InnerRow(
            doc.id,
            record.id,
            document_id,
            doc.author,
            str(operation.schema_id),
            plaintext,
            self._lamport_of(operation),
            doc.epoch,
        )

    # --- reading decrypted documents -----------------------------------------------------------------

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
            return build_document(operations, schema=schema)
        except P2PandaError as exc:
            log.info("document of %s does not build: %s", rows[0].id, exc)
            return None
