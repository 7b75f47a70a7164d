"""The node's HTTP server: `POST /graphql`, GraphQL subscriptions over WebSocket on `GET /graphql`
(the `graphql-transport-ws` protocol), `GET /blobs/{document id}[/{view id}]`.

Starts and stops cleanly inside the caller's event loop (aiohttp AppRunner). Binds 127.0.0.1 by default.
What browsers may do is in `browser.py` (B1-B4: no CORS unless configured), the bounds on clients in
`limits.py` (H1-H6: connections, timeouts, WebSockets, subscriptions, slow readers), the fair shares of
clients in `fairness.py` (F1-F5: requests at once, event-loop time and connections per client).

WebSocket connection states: connected -> acknowledged (after `connection_init`) -> closed. A
`subscribe` before acknowledgement closes with 4401, a second init with 4429, a reused subscription id
with 4409, a malformed message with 4400 (the protocol's codes).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from graphql import ExecutionResult

from p2panda.errors import P2PandaError
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.node.api.browser import BrowserPolicy, browser_guard
from p2panda.node.api.fairness import TICKET, ClientLimits, Fairness, fairness_guard
from p2panda.node.api.graphql import GraphQLApi, formatted
from p2panda.node.api.limits import CappedSite, HttpLimits
from p2panda.node.blobs import read_blob
from p2panda.node.changes import SubscriptionLagged

__all__ = ["HttpServer"]

log = logging.getLogger(__name__)

WS_PROTOCOL = "graphql-transport-ws"
_SHUTDOWN_TIMEOUT = 2.0  # for requests other than GraphQL ones, which a stop cancels at once


class _SlowReader(Exception):
    """H5, H7: a WebSocket client did not take its messages in time, or the node holds too many bytes for it."""


class HttpServer:
    def __init__(
        self,
        api: GraphQLApi,
        host: str = "127.0.0.1",
        port: int = 2020,
        *,
        limits: HttpLimits | None = None,
        browsers: BrowserPolicy | None = None,
        clients: ClientLimits | None = None,
    ) -> None:
        self.api = api
        self.host = host
        self.port = port
        self.limits = limits or HttpLimits()
        self.fairness = Fairness(clients or ClientLimits())
        self._runner: web.AppRunner | None = None
        self.app = web.Application(
            middlewares=[browser_guard(browsers or BrowserPolicy()), fairness_guard(self.fairness)],
            client_max_size=self.limits.max_body,
        )
        self.app.router.add_post("/graphql", self._graphql)
        self.app.router.add_get("/graphql", self._get_graphql)
        self.app.router.add_get("/blobs/{document_id}", self._blob)
        self.app.router.add_get("/blobs/{document_id}/{view_id}", self._blob)
        self._sockets: set[web.WebSocketResponse] = set()
        self._executions: set[asyncio.Future[dict[str, Any]]] = set()
        self._stopping = False

    async def start(self) -> None:
        # H2: aiohttp's keep-alive timer runs from the moment a connection opens and again after every
        # response, and closes the connection while it waits for a request head.
        # After an early answer (408, 413) aiohttp reads on what the client still sends, for at most the
        # lingering time: the body timeout bounds that too.
        # Q7 (cost.py): a request whose client hangs up is cancelled (aiohttp keeps running it otherwise).
        self._runner = web.AppRunner(
            self.app,
            access_log=None,
            keepalive_timeout=self.limits.header_timeout,
            lingering_time=self.limits.body_timeout,
            handler_cancellation=True,
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
        )
        await self._runner.setup()
        site = CappedSite(self._runner, self.host, self.port, self.limits.max_connections, self.fairness)
        await site.start()
        self.port = site.port
        log.info("GraphQL API on http://%s:%d/graphql", self.host, self.port)

    async def stop(self) -> None:
        # aiohttp would wait for running requests, then only ask them to stop: stop them first (a publish
        # runs to its end all the same, see `Node.publish`).
        self._stopping = True
        for execution in list(self._executions):
            execution.cancel()
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

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if len(self._sockets) >= self.limits.max_websockets:  # H4
            return web.json_response(
                {"errors": [{"message": f"too many WebSockets open ({self.limits.max_websockets}), retry later"}]},
                status=503,
            )
        ticket = request[TICKET]  # F6: the handler's steps are timed by the guard, its subscriptions' here
        socket = web.WebSocketResponse(protocols=(WS_PROTOCOL,), heartbeat=30)
        await socket.prepare(request)
        self._sockets.add(socket)
        running: dict[str, asyncio.Future[None]] = {}
        acknowledged = False
        try:
            while True:
                try:
                    # H5: a WebSocket that holds no subscription must keep talking.
                    frame = await socket.receive(timeout=None if running else self.limits.idle_timeout)
                except TimeoutError:
                    await socket.close(code=4408, message=b"idle without a subscription")
                    break
                if frame.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
                if frame.type is not WSMsgType.TEXT:
                    continue
                await self.fairness.pace(ticket.client)  # F6
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
                    await self._send(request, socket, {"type": "connection_ack"})
                elif kind == "ping":
                    await self._send(request, socket, {"type": "pong"})
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
                    if len(running) >= self.limits.max_subscriptions:  # H4
                        limit = self.limits.max_subscriptions
                        error = [{"message": f"too many subscriptions on this connection (limit {limit})"}]
                        await self._send(request, socket, {"id": ident, "type": "error", "payload": error})
                        continue
                    results = await self._start(request, socket, ident, payload, ticket.client)
                    if results is not None:
                        stream = self._stream(request, socket, ident, results, running)
                        running[ident] = asyncio.ensure_future(ticket.timed(stream))
                elif kind == "complete":
                    task = running.pop(str(message.get("id")), None)
                    if task is not None:
                        task.cancel()
        except _SlowReader as why:
            self._drop(request, socket, why)
        finally:
            for task in running.values():
                task.cancel()
            self._sockets.discard(socket)
        return socket

    async def _send(self, request: web.Request, socket: web.WebSocketResponse, message: dict[str, Any]) -> None:
        """H5, H7: aiohttp itself waits for the transport to drain only every 256 KiB written, and each of a
        socket's subscriptions writes on its own: a client that does not read would hold up to that much per
        subscription. So every send waits for the drain first, and what is still queued is capped in bytes."""
        data = json.dumps(message)  # ASCII (json's default): its length is its size in bytes
        try:
            async with asyncio.timeout(self.limits.send_timeout):
                await request.writer.drain()
                transport = request.transport
                if transport is None:
                    raise ConnectionResetError("the WebSocket client is gone")
                queued = transport.get_write_buffer_size()
                if queued + len(data) > self.limits.max_queued_bytes:
                    limit = self.limits.max_queued_bytes
                    raise _SlowReader(f"{queued} bytes queued and {len(data)} more to send, over the limit of {limit}")
                await socket.send_str(data)
        except TimeoutError:
            raise _SlowReader(f"did not read for {self.limits.send_timeout:g} s") from None

    def _drop(self, request: web.Request, socket: web.WebSocketResponse, why: _SlowReader) -> None:
        log.warning("dropped a WebSocket client that does not keep up (%s): %s", request.remote, why)
        self._sockets.discard(socket)
        if request.transport is not None:
            # abort, not close: close would wait for the unread buffer to drain, which never happens; a close
            # frame would sit behind the bytes the client does not read.
            request.transport.abort()

    async def _start(
        self, request: web.Request, socket: web.WebSocketResponse, ident: str, payload: dict[str, Any], client: str
    ) -> AsyncIterator[ExecutionResult] | None:
        """Start a subscription before reading the next message, so a client's `ping` after
        `subscribe` is answered only once the subscription is live."""
        problem = _request_problem(payload)
        if problem is not None:
            await self._send(request, socket, {"id": ident, "type": "error", "payload": [{"message": problem}]})
            return None
        results = await self.api.subscribe(
            payload["query"],
            payload.get("variables") or {},
            payload.get("operationName"),
            pace=lambda: self.fairness.pace(client),
        )
        if isinstance(results, dict):
            await self._send(request, socket, {"id": ident, "type": "error", "payload": results.get("errors", [])})
            return None
        return results

    async def _stream(
        self,
        request: web.Request,
        socket: web.WebSocketResponse,
        ident: str,
        results: AsyncIterator[ExecutionResult],
        running: dict[str, asyncio.Future[None]],
    ) -> None:
        try:
            try:
                async for result in results:
                    await self._send(request, socket, {"id": ident, "type": "next", "payload": formatted(result)})
                await self._send(request, socket, {"id": ident, "type": "complete"})
            except SubscriptionLagged as exc:
                await self._send(request, socket, {"id": ident, "type": "error", "payload": [{"message": str(exc)}]})
        except _SlowReader as why:
            self._drop(request, socket, why)
        except ConnectionResetError:
            pass
        finally:
            running.pop(ident, None)
            aclose = getattr(results, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _graphql(self, request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(self.limits.body_timeout):  # H3
                text = await request.text()
        except TimeoutError:
            limit = self.limits.body_timeout
            error = {"data": None, "errors": [{"message": f"request body not received within {limit:g} s"}]}
            return web.json_response(error, status=408, headers={"Connection": "close"})
        try:
            body = json.loads(text)
        except ValueError as exc:
            return _malformed(f"the body is not JSON: {exc}")
        problem = _request_problem(body)
        if problem is not None:
            return _malformed(problem)
        ticket = request[TICKET]
        # F3: the execution runs in a task of its own (so that a stop can cancel it): its time is the client's.
        execution = asyncio.ensure_future(
            ticket.timed(self.api.execute(body["query"], body.get("variables") or {}, body.get("operationName")))
        )
        self._executions.add(execution)
        try:
            result = await execution
        except asyncio.CancelledError:
            if not self._stopping:
                raise  # the client hung up: nothing to answer
            stopping = {"data": None, "errors": [{"message": "node stopping"}]}
            return web.json_response(stopping, status=503, headers={"Connection": "close"})
        finally:
            self._executions.discard(execution)
        return web.json_response(result)


def _request_problem(body: object) -> str | None:
    """What is wrong with the shape of a GraphQL request (HTTP body or WebSocket `subscribe` payload)."""
    if not isinstance(body, dict):
        return f"the request must be a JSON object, not {type(body).__name__}"
    if not isinstance(body.get("query"), str):
        return "query must be a string"
    if not isinstance(body.get("variables"), dict | None):
        return f"variables must be an object, not {type(body['variables']).__name__}"
    if not isinstance(body.get("operationName"), str | None):
        return f"operationName must be a string, not {type(body['operationName']).__name__}"
    return None


def _malformed(problem: str) -> web.Response:
    return web.json_response(
        {"data": None, "errors": [{"message": f"malformed GraphQL request: {problem}"}]}, status=400
    )
