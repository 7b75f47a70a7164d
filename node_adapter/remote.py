"""`RemoteNode(url)`: any aquadoggo-compatible node over GraphQL (HTTP for queries and publishing,
WebSocket with the graphql-transport-ws protocol for subscriptions, which only our node offers).

Known differences from an embedded node, from the API itself: relation lists come back ordered by
document id (the API serves them as collections), and integers travel as GraphQL `Int` (32-bit).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from node_adapter.errors import NodeAdapterError, NodeUnavailable, PublishRefused, QueryRefused
from node_adapter.interface import Changes, Node
from node_adapter.types import DocumentView, Page, Query
from p2panda.errors import P2PandaError
from p2panda.hash import Hash
from p2panda.identity import PublicKey
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.node.changes import DocumentChanged
from p2panda.node.policy import OperationStatus
from p2panda.node.publish import NextArgs
from p2panda.operation.value import OperationValue, PinnedRelation, PinnedRelationList, Relation, RelationList
from p2panda.schema import FieldKind, FieldType, Schema, SchemaId

__all__ = ["RemoteNode"]

_NEXT_ARGS = "logId seqNum backlink skiplink"
_META = "meta { documentId viewId owner edited deleted }"
_LIST_SIZE = 10_000
_CHANGE_QUERY = (
    "subscription C($ids: [String!]) { documentChanged(schemaIds: $ids) "
    "{ documentId viewId schemaId operationId publicKey deleted } }"
)


def _selection(name: str, field_type: FieldType) -> str:
    kind = field_type.kind
    if kind is FieldKind.RELATION:
        return f"{name} {{ meta {{ documentId }} }}"
    if kind is FieldKind.PINNED_RELATION:
        return f"{name} {{ meta {{ viewId }} }}"
    if kind is FieldKind.RELATION_LIST:
        return f"{name}(first: {_LIST_SIZE}) {{ documents {{ meta {{ documentId }} }} }}"
    if kind is FieldKind.PINNED_RELATION_LIST:
        return f"{name}(first: {_LIST_SIZE}) {{ documents {{ meta {{ viewId }} }} }}"
    return name


def _value(field_type: FieldType, raw: Any) -> OperationValue:
    kind = field_type.kind
    if kind is FieldKind.BYTES:
        return bytes.fromhex(raw)
    if kind is FieldKind.RELATION:
        return Relation(DocumentId.from_hex(raw["meta"]["documentId"]))
    if kind is FieldKind.PINNED_RELATION:
        return PinnedRelation(DocumentViewId.from_str(raw["meta"]["viewId"]))
    if kind is FieldKind.RELATION_LIST:
        return RelationList(tuple(DocumentId.from_hex(d["meta"]["documentId"]) for d in raw["documents"]))
    if kind is FieldKind.PINNED_RELATION_LIST:
        return PinnedRelationList(tuple(DocumentViewId.from_str(d["meta"]["viewId"]) for d in raw["documents"]))
    if kind is FieldKind.FLOAT:
        return float(raw)
    if kind in (FieldKind.INT, FieldKind.BOOL, FieldKind.STR):
        return raw  # type: ignore[no-any-return]
    raise NodeAdapterError(f"unexpected field kind {kind}")


def _next_args(raw: Mapping[str, Any]) -> NextArgs:
    return NextArgs(
        int(raw["logId"]),
        int(raw["seqNum"]),
        Hash.from_hex(raw["backlink"]) if raw.get("backlink") else None,
        Hash.from_hex(raw["skiplink"]) if raw.get("skiplink") else None,
    )


class _RemoteChanges(Changes):
    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket

    def __aiter__(self) -> AsyncIterator[DocumentChanged]:
        return self._changes()

    async def _changes(self) -> AsyncIterator[DocumentChanged]:
        async for frame in self._socket:
            if frame.type is not aiohttp.WSMsgType.TEXT:
                break
            message = json.loads(frame.data)
            if message.get("type") == "next":
                c = message["payload"]["data"]["documentChanged"]
                yield DocumentChanged(
                    document_id=DocumentId.from_hex(c["documentId"]),
                    schema_id=c["schemaId"],
                    view_id=DocumentViewId.from_str(c["viewId"]),
                    operation_id=Hash.from_hex(c["operationId"]),
                    public_key=PublicKey.from_hex(c["publicKey"]),
                    is_deleted=c["deleted"],
                )
            elif message.get("type") == "error":
                raise QueryRefused(f"subscription failed: {message.get('payload')}")
            elif message.get("type") == "complete":
                return

    async def close(self) -> None:
        await self._socket.close()


class RemoteNode(Node):
    """A node at `url` (its GraphQL endpoint, e.g. http://127.0.0.1:2020/graphql)."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise NodeUnavailable("remote node client is not started")
        return self._session

    async def _request(self, query: str, variables: Mapping[str, Any]) -> tuple[Any, list[str]]:
        try:
            async with self.session.post(self.url, json={"query": query, "variables": dict(variables)}) as response:
                body = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, json.JSONDecodeError) as exc:
            raise NodeUnavailable(f"node at {self.url} did not answer: {exc}") from exc
        errors = [str(e.get("message", e)) for e in body.get("errors") or []]
        return body.get("data"), errors

    async def _graphql(self, query: str, variables: Mapping[str, Any]) -> Any:
        data, errors = await self._request(query, variables)
        if errors:
            raise QueryRefused("; ".join(errors))
        return data

    async def next_args(self, public_key: PublicKey, view_id: DocumentViewId | None = None) -> NextArgs:
        data = await self._graphql(
            f"query N($pk: PublicKey!, $v: DocumentViewId) {{ nextArgs(publicKey: $pk, viewId: $v) {{ {_NEXT_ARGS} }} }}",
            {"pk": public_key.hex(), "v": None if view_id is None else str(view_id)},
        )
        return _next_args(data["nextArgs"])

    async def publish(self, entry: bytes, operation: bytes) -> NextArgs:
        data, errors = await self._request(
            "mutation P($e: EncodedEntry!, $o: EncodedOperation!) "
            f"{{ publish(entry: $e, operation: $o) {{ {_NEXT_ARGS} }} }}",
            {"e": entry.hex(), "o": operation.hex()},
        )
        if errors:
            raise PublishRefused("; ".join(errors))
        return _next_args(data["publish"])

    def _document_selection(self, schema: Schema) -> str:
        fields = " ".join(_selection(name, t) for name, t in schema.fields.items())
        return f"{_META} fields {{ {fields} }}"

    def _view(self, schema: Schema, raw: Mapping[str, Any]) -> DocumentView:
        meta = raw["meta"]
        try:
            fields = None
            if raw.get("fields") is not None and not meta["deleted"]:
                fields = {name: _value(t, raw["fields"][name]) for name, t in schema.fields.items()}
            return DocumentView(
                id=DocumentId.from_hex(meta["documentId"]),
                view_id=DocumentViewId.from_str(meta["viewId"]),
                schema_id=SchemaId.parse(str(schema.id)),
                owner=PublicKey.from_hex(meta["owner"]),
                fields=fields,
                is_edited=bool(meta["edited"]),
                is_deleted=bool(meta["deleted"]),
            )
        except (KeyError, TypeError, ValueError, P2PandaError) as exc:
            raise NodeAdapterError(f"node at {self.url} sent a malformed {schema.id} document: {exc}") from exc

    async def _one(self, schema: Schema, argument: str, value: str, scalar: str) -> DocumentView | None:
        name = str(schema.id)
        data = await self._graphql(
            f"query D($x: {scalar}!) {{ {name}({argument}: $x) {{ {self._document_selection(schema)} }} }}",
            {"x": value},
        )
        raw = data.get(name)
        return None if raw is None else self._view(schema, raw)

    async def document(self, schema: Schema, document_id: DocumentId) -> DocumentView | None:
        return await self._one(schema, "id", document_id.hex(), "DocumentId")

    async def document_at(self, schema: Schema, view_id: DocumentViewId) -> DocumentView | None:
        return await self._one(schema, "viewId", str(view_id), "DocumentViewId")

    async def _query(self, schema: Schema, q: Query) -> Page:
        name = str(schema.id)
        data = await self._graphql(
            f"query Q($f: {name}Filter, $m: MetaFilterInputObject, $o: {name}OrderBy, $d: OrderDirection, "
            f"$n: Int, $a: Cursor) {{ all_{name}(filter: $f, meta: $m, orderBy: $o, orderDirection: $d, "
            f"first: $n, after: $a) {{ totalCount hasNextPage endCursor documents "
            f"{{ {self._document_selection(schema)} }} }} }}",
            {"f": q.filter, "m": q.meta, "o": q.order_by, "d": q.direction, "n": q.first, "a": q.after},
        )
        raw = data[f"all_{name}"]
        views = [self._view(schema, d) for d in raw["documents"]]
        return Page(int(raw["totalCount"]), views, bool(raw["hasNextPage"]), raw["endCursor"] or None)

    async def subscribe(self, schema_ids: frozenset[str] | None = None) -> Changes:
        ws_url = "ws" + self.url.removeprefix("http")
        try:
            socket = await self.session.ws_connect(ws_url, protocols=("graphql-transport-ws",))
            await socket.send_json({"type": "connection_init"})
            await self._expect(socket, "connection_ack")
            variables = {"ids": sorted(schema_ids) if schema_ids is not None else None}
            await socket.send_json(
                {"id": "1", "type": "subscribe", "payload": {"query": _CHANGE_QUERY, "variables": variables}}
            )
            # The node handles a connection's messages in order and starts a subscription before it
            # reads the next one: the pong says the subscription is live.
            await socket.send_json({"type": "ping"})
            await self._expect(socket, "pong")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise NodeUnavailable(f"node at {self.url} refused a subscription: {exc}") from exc
        return _RemoteChanges(socket)

    async def _expect(self, socket: aiohttp.ClientWebSocketResponse, kind: str) -> None:
        message = await socket.receive_json(timeout=self._timeout.total)
        if message.get("type") == "error":
            await socket.close()
            raise QueryRefused(f"subscription refused: {message.get('payload')}")
        if message.get("type") != kind:
            await socket.close()
            raise NodeAdapterError(f"node at {self.url} answered {message.get('type')!r}, expected {kind!r}")

    async def operation_status(self, operation_id: Hash) -> OperationStatus | None:
        data = await self._graphql(
            "query S($id: EntryHash!) { operationStatus(id: $id) { operationId documentId schemaId reason } }",
            {"id": operation_id.hex()},
        )
        raw = data.get("operationStatus")
        if raw is None:
            return None
        try:
            return OperationStatus(raw["operationId"], raw["documentId"], raw["schemaId"], raw["reason"])
        except (KeyError, TypeError) as exc:
            raise NodeAdapterError(f"node at {self.url} sent a malformed operation status: {exc}") from exc

    async def log_heights(self, public_key: PublicKey) -> dict[int, int]:
        data = await self._graphql(
            "query H($pk: PublicKey!) { logHeights(publicKey: $pk) { logId seqNum } }", {"pk": public_key.hex()}
        )
        try:
            return {int(h["logId"]): int(h["seqNum"]) for h in data["logHeights"]}
        except (KeyError, TypeError, ValueError) as exc:
            raise NodeAdapterError(f"node at {self.url} sent malformed log heights: {exc}") from exc
