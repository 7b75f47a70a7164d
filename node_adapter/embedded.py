"""`EmbeddedNode`: the p2panda node in this process, started and stopped in the caller's event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path

from keygroups.policy import KeyGroupPolicy
from keygroups.schemas import BUNDLE_PATH, KEY_GROUP, MEMBERSHIP
from node_adapter.errors import NodeUnavailable, PublishRefused, QueryRefused
from node_adapter.interface import Changes, Node
from node_adapter.types import DocumentView, Page, Query
from p2panda.errors import P2PandaError
from p2panda.hash import Hash
from p2panda.identity import PublicKey
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.keystore import load_or_create_node_key
from p2panda.node import Node as P2PandaNode
from p2panda.node import NodeConfig
from p2panda.node.changes import DocumentChanged, Subscription
from p2panda.node.peer import Peer
from p2panda.node.policy import OperationStatus
from p2panda.node.publish import NextArgs
from p2panda.node.query import QueryError, select_documents
from p2panda.node.replication import Replication, ReplicationConfig
from p2panda.node.transport import DEFAULT_NETWORK_KEY
from p2panda.schema import Schema
from secret_group.schemas import BUNDLE_PATH as SECRET_GROUP_BUNDLE_PATH
from secret_group.schemas import COMMIT, ENVELOPE, KEY_PACKAGE, SECRET_GROUP

__all__ = ["EmbeddedNode", "with_key_groups"]


def with_key_groups(config: NodeConfig) -> NodeConfig:
    """The config with the key-group policy and the bundles of the key-group and secret-group schemas (and,
    with an allow-list, those schemas allowed): every node `panda` runs can store and relay groups."""
    allowed = config.allow_schema_ids
    if allowed is not None:
        allowed = allowed | {KEY_GROUP, MEMBERSHIP, KEY_PACKAGE, SECRET_GROUP, COMMIT, ENVELOPE}
    ours = tuple(b for b in (BUNDLE_PATH, SECRET_GROUP_BUNDLE_PATH) if b not in config.bundles)
    return replace(
        config, policy=config.policy or KeyGroupPolicy(), bundles=(*ours, *config.bundles), allow_schema_ids=allowed
    )


class _EmbeddedChanges(Changes):
    def __init__(self, subscription: Subscription) -> None:
        self._subscription = subscription

    def __aiter__(self) -> AsyncIterator[DocumentChanged]:
        return self._subscription

    async def close(self) -> None:
        self._subscription.close()


class EmbeddedNode(Node):
    """The node in-process; by default a SQLite file in `data_dir`.

    With `replication_port` (0: any free port) it also replicates: it listens on `replication_host`
    (loopback unless asked), dials `peers` ("<node key>@host:port"; `PeerAddressError` for
    another form, raised by the constructor) and, with `mdns`, finds peers
    on the local network. Its transport key is the node key in `<data dir>/node.key`, not the
    user's identity, so peers cannot link the node to the identity that signs the data."""

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        config: NodeConfig | None = None,
        replication_port: int | None = None,
        replication_host: str = "127.0.0.1",
        peers: Sequence[str] = (),
        network_key: bytes | None = None,
        mdns: bool = False,
    ) -> None:
        if config is None:
            if data_dir is None:
                raise ValueError("give a data directory or a NodeConfig")
            config = NodeConfig(data_dir)
        self.node = P2PandaNode(with_key_groups(config))
        parsed = tuple(Peer.parse(p) for p in peers)  # a bad address fails here, before anything starts
        self._replication_settings = (replication_port, replication_host, parsed, network_key, mdns)
        self.replication: Replication | None = None
        self._started = False

    async def start(self) -> None:
        await self.node.start()
        port, host, peers, network_key, mdns = self._replication_settings
        if port is not None:
            key_pair = load_or_create_node_key(self.node.config.data_dir)
            try:
                config = ReplicationConfig(
                    key_pair,
                    host,
                    port,
                    network_key or DEFAULT_NETWORK_KEY,
                    peers,
                    mdns=mdns,
                )
                self.replication = Replication(self.node, config)
                await self.replication.start()
            except BaseException:
                await self.node.stop()
                raise
        self._started = True

    async def stop(self) -> None:
        self._started = False
        if self.replication is not None:
            await self.replication.stop()
            self.replication = None
        await self.node.stop()

    def _check(self) -> None:
        if not self._started:
            raise NodeUnavailable("embedded node is not started")

    async def next_args(self, public_key: PublicKey, view_id: DocumentViewId | None = None) -> NextArgs:
        self._check()
        try:
            return await self.node.next_args(public_key, view_id)
        except P2PandaError as exc:
            raise QueryRefused(str(exc)) from exc

    async def publish(self, entry: bytes, operation: bytes) -> NextArgs:
        self._check()
        try:
            return (await self.node.publish(entry, operation)).next_args
        except P2PandaError as exc:  # every validation error of the core and the node
            raise PublishRefused(str(exc)) from exc

    async def document(self, schema: Schema, document_id: DocumentId) -> DocumentView | None:
        self._check()
        doc = await self.node.document(document_id)
        if doc is None or doc.is_deleted or doc.schema_id != schema.id:
            return None
        return DocumentView.of(doc)

    async def document_at(self, schema: Schema, view_id: DocumentViewId) -> DocumentView | None:
        self._check()
        doc = await self.node.document_at(view_id)
        if doc is None or doc.is_deleted or doc.schema_id != schema.id:
            return None
        return DocumentView.of(doc)

    async def _query(self, schema: Schema, q: Query) -> Page:
        self._check()
        if self.node.schema(str(schema.id)) is None:
            raise QueryRefused(f"schema {schema.id} is not known to this node")
        if q.order_by not in ("DOCUMENT_ID", "DOCUMENT_VIEW_ID", *schema.fields):
            raise QueryRefused(f"cannot order {schema.id} by {q.order_by!r}")
        docs = await self.node.documents(str(schema.id), include_deleted=True)
        try:
            page = select_documents(docs, schema, q.filter, q.meta, q.order_by, q.direction, q.first, q.after)
        except QueryError as exc:
            raise QueryRefused(str(exc)) from exc
        views = [DocumentView.of(d) for d in page.items]
        return Page(page.total, views, page.has_next, views[-1].id.hex() if views else None)

    async def subscribe(self, schema_ids: frozenset[str] | None = None) -> Changes:
        self._check()
        return _EmbeddedChanges(self.node.subscribe(schema_ids))

    async def operation_status(self, operation_id: Hash) -> OperationStatus | None:
        self._check()
        return await self.node.operation_status(operation_id)

    async def log_heights(self, public_key: PublicKey) -> dict[int, int]:
        self._check()
        return await self.node.log_heights(public_key)
