"""The node's HTTP server: `POST /graphql`, GraphQL subscriptions over WebSocket on `GET /graphql`
(the `graphql-transport-ws` protocol), `GET /blobs/{document id}[/{view id}]`, CORS for any origin.

Starts and stops cleanly inside the caller's event loop (aiohttp AppRunner). Binds 127.0.0.1 by default.

WebSocket connection states: connected -> acknowledged (after `connection_init`) -> closed. A
`subscribe` before acknowledgement closes with 4401, a second init with 4429, a reused subscription id
with 4409, a malformed message with 4400 (the protocol's codes).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from graphql import ExecutionResult

from p2panda.errors import P2PandaError
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.node.api.graphql import GraphQLApi, formatted
from p2panda.node.blobs import read_blob
from p2panda.node.changes import SubscriptionLagged

__all__ = ["HttpServer"]

log = logging.getLogger(__name__)

_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
}
MAX_BODY = 1024 * 1024
WS_PROTOCOL = "graphql-transport-ws"


@web.middleware
async def _cors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=_CORS)
    response = await handler(request)
    response.headers.update(_CORS)
    return response


class HttpServer:
    def __init__(self, api: GraphQLApi, host: str = "127.0.0.1", port: int = 2020) -> None:
        self.api = api
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self.app = web.Application(middlewares=[_cors], client_max_size=MAX_BODY)
        self.app.router.add_post("/graphql", self._graphql)
        self.app.router.add_get("/graphql", self._get_graphql)
        self.app.router.add_get("/blobs/{document_id}", self._blob)
        self.app.router.add_get("/blobs/{document_id}/{view_id}", self._blob)
        self._sockets: set[web.WebSocketResponse] = set()

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("GraphQL API on http://%s:%d/graphql", self.host, self.port)

    async def stop(self) -> None:
        for socket in list(self._sockets):
            await socket.close(code=WSCloseCode.GOING_AWAY, message=b"node stopping")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _get_graphql(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        return web.Response(text="p2panda node: POST GraphQL queries to this URL, or subscribe over WebSocket\n")

    async def _blob(self, request: web.Request) -> web.StreamResponse:
        try:
            document_id = DocumentId.from_hex(request.match_info["document_id"])
            raw_view = request.match_info.get("view_id")
            view_id = DocumentViewId.from_str(raw_view) if raw_view is not None else None
        except (P2PandaError, ValueError) as exc:
            return web.Response(status=400, text=f"malformed id: {exc}\n")
        blob = await read_blob(self.api.node, document_id, view_id)
        if blob is None:
            return web.Response(status=404, text=f"no complete blob {request.path.removeprefix('/blobs/')}\n")
        etag = f'"{blob.view_id}"'
        if etag in {tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")}:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=blob.data, content_type=blob.mime_type, headers={"ETag": etag})

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(protocols=(WS_PROTOCOL,), heartbeat=30)
        await socket.prepare(request)
        self._sockets.add(socket)
        running: dict[str, asyncio.Task[None]] = {}
        acknowledged = False
        try:
            async for frame in socket:
                if frame.type is not WSMsgType.TEXT:
                    continue
                try:
                    message = json.loads(frame.data)
                    kind = message["type"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    await socket.close(code=4400, message=b"malformed message")
                    break
                if kind == "connection_init":
                    if acknowledged:
                        await socket.close(code=4429, message=b"too many initialisation requests")
                        break
                    acknowledged = True
                    await socket.send_json({"type": "connection_ack"})
                elif kind == "ping":
                    await socket.send_json({"type": "pong"})
                elif kind == "subscribe":
                    if not acknowledged:
                        await socket.close(code=4401, message=b"unauthorized")
                        break
                    ident = message.get("id")
                    payload = message.get("payload")
                    if not isinstance(ident, str) or not isinstance(payload, dict):
                        await socket.close(code=4400, message=b"subscribe needs an id and a payload")
                        break
                    if ident in running:
                        await socket.close(code=4409, message=f"subscriber for {ident} already exists".encode())
                        break
                    results = await self._start(socket, ident, payload)
                    if results is not None:
                        running[ident] = asyncio.create_task(self._stream(socket, ident, results, running))
                elif kind == "complete":
                    task = running.pop(str(message.get("id")), None)
                    if task is not None:
                        task.cancel()
        finally:
            for task in running.values():
                task.cancel()
            self._sockets.discard(socket)
        return socket

    async def _start(
        self, socket: web.WebSocketResponse, ident: str, payload: dict[str, Any]
    ) -> AsyncIterator[ExecutionResult] | None:
        """Start a subscription before reading the next message, so a client's `ping` after
        `subscribe` is answered only once the subscription is live."""
        query = payload.get("query")
        if not isinstance(query, str):
            await socket.send_json({"id": ident, "type": "error", "payload": [{"message": "query must be a string"}]})
            return None
        results = await self.api.subscribe(query, payload.get("variables") or {}, payload.get("operationName"))
        if isinstance(results, dict):
            await socket.send_json({"id": ident, "type": "error", "payload": results.get("errors", [])})
            return None
        return results

    async def _stream(
        self,
        socket: web.WebSocketResponse,
        ident: str,
        results: AsyncIterator[ExecutionResult],
        running: dict[str, asyncio.Task[None]],
    ) -> None:
        try:
            async for result in results:
                await socket.send_json({"id": ident, "type": "next", "payload": formatted(result)})
            await socket.send_json({"id": ident, "type": "complete"})
        except SubscriptionLagged as exc:
            await socket.send_json({"id": ident, "type": "error", "payload": [{"message": str(exc)}]})
        except ConnectionResetError:
            pass
        finally:
            running.pop(ident, None)
            aclose = getattr(results, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _graphql(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            query = body["query"]
            if not isinstance(query, str):
                raise TypeError("query must be a string")
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            error = {"data": None, "errors": [{"message": f"malformed GraphQL request: {exc}"}]}
            return web.json_response(error, status=400)
        variables = body.get("variables") or {}
        result = await self.api.execute(query, variables, body.get("operationName"))
        return web.json_response(result)
