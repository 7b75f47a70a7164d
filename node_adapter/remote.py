"""`RemoteNode(url)`: any aquadoggo-compatible node over GraphQL (HTTP for queries and publishing,
WebSocket with the graphql-transport-ws protocol for subscriptions, which only our node offers).

It learns once, by introspection, what the node serves (`capabilities.py`) and sends only that: no null
arguments (aquadoggo refuses a null filter, meta filter or cursor), no meta fields the node lacks. On a
stock aquadoggo 0.8:

- `is_edited` is derived from the view id (a document is edited iff its view is not its CREATE alone);
  `is_deleted` is False: aquadoggo serves no deleted document, by id, view id or in a collection;
- a collection ordered by a field is paged selecting that field alone, then the page's documents are
  fetched by id: aquadoggo pages wrongly over equal values of the ordered field when a query selects
  more fields (it skips and repeats documents);
- `log_heights` is derived from `nextArgs` per document of the permissioned schemas (`heights.py`);
- an `edited` meta filter raises `NotSupported` (aquadoggo fails it with an SQL error);
- `subscribe` and `operation_status` raise `NotSupported`: aquadoggo has no subscriptions, and no way to
  look an operation up by id (nor a write policy whose verdicts it could report). Polling cannot stand in
  for subscriptions: the API does not say who wrote an update, which every change event carries.

Known differences from an embedded node, from the API itself: relation lists are served as collections
of the documents the node holds (a related document it does not hold, or a deleted one, is left out; a
stock aquadoggo also leaves out pinned views that are no longer current), and integers travel as GraphQL
`Int` (32-bit).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from keygroups.schemas import KEY_GROUP, OWNER_FIELD
from node_adapter.capabilities import INTROSPECTION, SCHEMA_TYPES, Capabilities, capabilities_of, permissioned_schemas
from node_adapter.errors import NodeAdapterError, NodeUnavailable, NotSupported, PublishRefused, QueryRefused
from node_adapter.heights import heights_from_next_args
from node_adapter.interface import Changes, Node
from node_adapter.settle import wait_materialised
from node_adapter.types import DocumentView, Page, Query
from p2panda.errors import P2PandaError
from p2panda.hash import Hash
from p2panda.identity import PublicKey
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.node.changes import DocumentChanged
from p2panda.node.policy import OperationStatus
from p2panda.node.publish import NextArgs
from p2panda.operation import decode_operation
from p2panda.operation.value import OperationValue, PinnedRelation, PinnedRelationList, Relation, RelationList
from p2panda.schema import FieldKind, FieldType, Schema, SchemaId

__all__ = ["RemoteNode"]

_NEXT_ARGS = "logId seqNum backlink skiplink"
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

    def __init__(self, url: str, *, timeout: float = 30.0, settle_timeout: float = 30.0) -> None:
        """`settle_timeout`: how long `publish` waits for a node that materialises after answering (a
        stock aquadoggo) to show the operation (see `settle.py`)."""
        self.url = url
        self._settle_timeout = settle_timeout
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._capabilities: Capabilities | None = None

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

    async def capabilities(self) -> Capabilities:
        """What the node's API offers; asked once per client (a node's static API does not change)."""
        if self._capabilities is None:
            data = await self._graphql(INTROSPECTION, {})
            try:
                self._capabilities = capabilities_of(data)
            except (KeyError, TypeError) as exc:
                raise NodeAdapterError(f"node at {self.url} sent a malformed introspection answer: {exc}") from exc
        return self._capabilities

    async def _request(self, query: str, variables: Mapping[str, Any]) -> tuple[Any, list[str]]:
        try:
            async with self.session.post(self.url, json={"query": query, "variables": dict(variables)}) as response:
                body = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, json.JSONDecodeError) as exc:
            raise NodeUnavailable(f"node at {self.url} did not answer: {exc}") from exc
        if not isinstance(body, dict):
            raise NodeAdapterError(f"node at {self.url} answered {body!r}, not a GraphQL response")
        errors = [str(e.get("message", e)) for e in body.get("errors") or []]
        return body.get("data"), errors

    async def _graphql(self, query: str, variables: Mapping[str, Any]) -> Any:
        data, errors = await self._request(query, variables)
        if errors:
            raise QueryRefused("; ".join(errors))
        return data

    async def next_args(self, public_key: PublicKey, view_id: DocumentViewId | None = None) -> NextArgs:
        if view_id is None:
            query = f"query N($pk: PublicKey!) {{ nextArgs(publicKey: $pk) {{ {_NEXT_ARGS} }} }}"
            variables = {"pk": public_key.hex()}
        else:
            query = (
                "query N($pk: PublicKey!, $v: DocumentViewId!) "
                f"{{ nextArgs(publicKey: $pk, viewId: $v) {{ {_NEXT_ARGS} }} }}"
            )
            variables = {"pk": public_key.hex(), "v": str(view_id)}
        data = await self._graphql(query, variables)
        return _next_args(data["nextArgs"])

    async def publish(self, entry: bytes, operation: bytes) -> NextArgs:
        data, errors = await self._request(
            "mutation P($e: EncodedEntry!, $o: EncodedOperation!) "
            f"{{ publish(entry: $e, operation: $o) {{ {_NEXT_ARGS} }} }}",
            {"e": entry.hex(), "o": operation.hex()},
        )
        if errors:
            raise PublishRefused("; ".join(errors))
        next_args = _next_args(data["publish"])
        if not (await self.capabilities()).materialises_before_answering:
            await self._settle(entry, operation)
        return next_args

    async def _settle(self, entry: bytes, payload: bytes) -> None:
        operation_id = Hash.of(entry)
        try:
            operation = decode_operation(payload)
        except P2PandaError as exc:  # the node took it: it decodes
            raise NodeAdapterError(f"node at {self.url} accepted an operation that does not decode: {exc}") from exc
        if not await wait_materialised(self._graphql, operation_id, operation, self._settle_timeout):
            raise NodeAdapterError(
                f"node at {self.url} accepted {operation.action} {operation_id.hex()} of {operation.schema_id} "
                f"but did not show it within {self._settle_timeout} s"
            )

    def _document_selection(self, schema: Schema, capabilities: Capabilities) -> str:
        fields = " ".join(_selection(name, t) for name, t in schema.fields.items())
        return f"meta {{ {capabilities.meta_selection} }} fields {{ {fields} }}"

    def _view(self, schema: Schema, raw: Mapping[str, Any]) -> DocumentView:
        meta = raw["meta"]
        try:
            # Without `DocumentMeta.deleted` (aquadoggo) nothing served is deleted: it keeps no view of a
            # deleted document.
            is_deleted = bool(meta.get("deleted", False))
            # A document is edited when its view is more than its CREATE: the same test aquadoggo's
            # `edited` filter makes (an operation other than the CREATE), read off the view id.
            is_edited = bool(meta["edited"]) if "edited" in meta else meta["viewId"] != meta["documentId"]
            fields = None
            if raw.get("fields") is not None and not is_deleted:
                fields = {name: _value(t, raw["fields"][name]) for name, t in schema.fields.items()}
            return DocumentView(
                id=DocumentId.from_hex(meta["documentId"]),
                view_id=DocumentViewId.from_str(meta["viewId"]),
                schema_id=SchemaId.parse(str(schema.id)),
                owner=PublicKey.from_hex(meta["owner"]),
                fields=fields,
                is_edited=is_edited,
                is_deleted=is_deleted,
            )
        except (KeyError, TypeError, ValueError, P2PandaError) as exc:
            raise NodeAdapterError(f"node at {self.url} sent a malformed {schema.id} document: {exc}") from exc

    async def _one(self, schema: Schema, argument: str, value: str, scalar: str) -> DocumentView | None:
        name = str(schema.id)
        capabilities = await self.capabilities()
        data = await self._graphql(
            f"query D($x: {scalar}!) {{ {name}({argument}: $x) {{ {self._document_selection(schema, capabilities)} }} }}",
            {"x": value},
        )
        raw = data.get(name)
        return None if raw is None else self._view(schema, raw)

    async def document(self, schema: Schema, document_id: DocumentId) -> DocumentView | None:
        return await self._one(schema, "id", document_id.hex(), "DocumentId")

    async def document_at(self, schema: Schema, view_id: DocumentViewId) -> DocumentView | None:
        return await self._one(schema, "viewId", str(view_id), "DocumentViewId")

    async def _query(self, schema: Schema, q: Query) -> Page:
        if q.first <= 0:
            # Checked here so that every node refuses it alike (aquadoggo's own text names no argument).
            raise QueryRefused(f"first must be positive, got {q.first}")
        name = str(schema.id)
        capabilities = await self.capabilities()
        if q.meta and q.meta.get("edited") and "edited" not in capabilities.meta_fields:
            raise NotSupported(
                f"node at {self.url} cannot filter by `edited` (a stock aquadoggo 0.8.1 fails every such query "
                "with an SQL error, no such column: is_edited)"
            )
        selection = self._document_selection(schema, capabilities)
        by_field = q.order_by not in ("DOCUMENT_ID", "DOCUMENT_VIEW_ID")
        if by_field and not capabilities.pages_over_equal_values:
            selection = f"meta {{ documentId }} fields {{ {q.order_by} }}"
        arguments = {
            "filter": (f"{name}Filter", dict(q.filter) if q.filter else None),
            "meta": ("MetaFilterInputObject", dict(q.meta) if q.meta else None),
            "orderBy": (f"{name}OrderBy", q.order_by),
            "orderDirection": ("OrderDirection", q.direction),
            "first": ("Int", q.first),
            "after": ("Cursor", q.after),
        }
        raw = await self._collection(name, arguments, selection)
        documents = raw["documents"]
        if by_field and not capabilities.pages_over_equal_values and documents:
            ids = [str(d["meta"]["documentId"]) for d in documents]
            full = await self._collection(
                name,
                {"meta": ("MetaFilterInputObject", {"documentId": {"in": ids}}), "first": ("Int", len(ids))},
                self._document_selection(schema, capabilities),
            )
            found = {str(d["meta"]["documentId"]): d for d in full["documents"]}
            # A document deleted between the two requests is left out, as a later query would.
            documents = [found[i] for i in ids if i in found]
        views = [self._view(schema, d) for d in documents]
        return Page(int(raw["totalCount"]), views, bool(raw["hasNextPage"]), raw["endCursor"] or None)

    async def _collection(self, name: str, arguments: Mapping[str, tuple[str, Any]], selection: str) -> Any:
        """`all_<name>` with the arguments that have a value (aquadoggo refuses null ones)."""
        given = {arg: (gql_type, value) for arg, (gql_type, value) in arguments.items() if value is not None}
        declared = ", ".join(f"${arg}: {gql_type}" for arg, (gql_type, _) in given.items())
        passed = ", ".join(f"{arg}: ${arg}" for arg in given)
        data = await self._graphql(
            f"query Q({declared}) {{ all_{name}({passed}) {{ totalCount hasNextPage endCursor documents {{ {selection} }} }} }}",
            {arg: value for arg, (_, value) in given.items()},
        )
        return data[f"all_{name}"]

    async def subscribe(self, schema_ids: frozenset[str] | None = None) -> Changes:
        if not (await self.capabilities()).has_changes:
            raise NotSupported(
                f"node at {self.url} has no documentChanged subscription (a stock aquadoggo 0.8 has no "
                "subscriptions), and polling cannot stand in: its API does not say who wrote an update"
            )
        ws_url = "ws" + self.url.removeprefix("http")
        try:
            socket = await self.session.ws_connect(ws_url, protocols=("graphql-transport-ws",))
            await socket.send_json({"type": "connection_init"})
            await self._expect(socket, "connection_ack")
            variables = {"ids": sorted(schema_ids)} if schema_ids is not None else {}
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
        if not (await self.capabilities()).has_operation_status:
            raise NotSupported(
                f"node at {self.url} has no operationStatus (a stock aquadoggo 0.8): its API cannot look an "
                "operation up by id, and it applies no write policy whose verdict it could report"
            )
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
        try:
            if (await self.capabilities()).has_log_heights:
                data = await self._graphql(
                    "query H($pk: PublicKey!) { logHeights(publicKey: $pk) { logId seqNum } }",
                    {"pk": public_key.hex()},
                )
                return {int(h["logId"]): int(h["seqNum"]) for h in data["logHeights"]}
            schemas = permissioned_schemas(await self._graphql(SCHEMA_TYPES, {}), KEY_GROUP, OWNER_FIELD)
            return await heights_from_next_args(self._graphql, public_key, schemas)
        except (KeyError, TypeError, ValueError) as exc:
            raise NodeAdapterError(f"node at {self.url} sent malformed log heights: {exc}") from exc
