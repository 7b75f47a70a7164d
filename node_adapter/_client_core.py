"""The state every layer of the `Client` shares and the steps they all take (the layers are listed in
`node_adapter.client`).

- one step, one transaction (`_persist`): the MLS journal (`MlsMember.take_changes`), the step's writes
  and its outbox row are stored together; on failure the in-memory MLS state is reloaded from the store, so
  memory never runs ahead of what is stored;
- the outbox (`_flush`): pending rows are published in order; a row the node refuses but already holds (a
  crash took the acknowledgement) is "sent", any other refusal "failed";
- access (`access`): the owner key group with nested key groups flattened (N1-N3), cached until a
  membership change arrives or this client makes one;
- the commit tree (`_path`, `_depth`): commit documents name their parent, the group id is the root.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cbor2

from keygroups import Level, Member
from keygroups.policy import flatten
from keygroups.resolve import GroupState
from node_adapter.client_store import ClientStore
from node_adapter.errors import NodeAdapterError, NodeUnavailable, PublishRefused, QueryRefused
from node_adapter.interface import Changes, Node
from node_adapter.key_groups import KeyGroup
from p2panda.entry import sign_entry
from p2panda.hash import Hash
from p2panda.identity import KeyPair
from p2panda.ids import DocumentViewId
from p2panda.node.publish import NextArgs
from p2panda.operation import Operation, encode_operation
from p2panda.schema import Schema
from secret_group.documents import CommitDoc, EnvelopeDoc
from secret_group.engine import Engine, GroupRecord
from secret_group.errors import NotMember
from secret_group.mls import MlsMember

__all__ = ["ClientEvent"]

log = logging.getLogger("node_adapter.client")

_PAGE = 200
# An embedded node filters a collection in memory for every page, so a sweep of a long history costs
# pages x documents: in-process, one page holds them all (a remote node's GraphQL limits apply).
_EMBEDDED_PAGE = 1 << 30


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


class _ClientCore:
    """Shared state (set by `Client.__init__` and `Client.start`) and the steps every layer takes."""

    node: Node
    key_pair: KeyPair
    me: str
    state_path: Path
    schemas: dict[str, Schema]
    engine: Engine
    synced: asyncio.Event
    last_error: str | None
    _poll_interval: float
    _sync_in_background: bool
    _lock: asyncio.Lock
    _store: ClientStore | None
    _member: MlsMember | None
    _changes: Changes | None
    _task: asyncio.Task[None] | None
    _listeners: set[asyncio.Queue[ClientEvent]]
    _access: dict[str, tuple[KeyGroup, dict[str, Level]]]
    _stagger: float
    _staggered: dict[str, asyncio.Task[None]]

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

    def _emit(self, kind: str, group_id: str, document_id: str | None = None) -> None:
        event = ClientEvent(kind, group_id, document_id)
        for queue in self._listeners:
            queue.put_nowait(event)

    def record(self, group_id: str) -> GroupRecord:
        record = self.store.group(group_id)
        if record is None:
            raise NotMember(f"group {group_id} is not known to this client")
        return record

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

    def next_lamport(self) -> int:
        return self.store.lamport() + 1

    @staticmethod
    def _lamport_of(operation: Operation) -> int:
        value = (operation.fields or {}).get("lamport")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

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

    def _depth(self, group_id: str, commit_id: str) -> int:
        """Commits from the group id down to `commit_id` (0 for the group id)."""
        docs = {d.id: d for d in (_decode_commit(b) for b in self.store.commit_docs(group_id))}
        path = _path(group_id, commit_id, docs)
        return len(path) - 1 if path is not None else 0
