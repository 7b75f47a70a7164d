"""Bounds on what clients can hold of the node's HTTP server, so that one client cannot starve the others
or the node's memory and file descriptors.

- H1 at most `max_connections` open connections: the next ones are answered `503` and closed at once
  (accepting goes on, so file descriptors never run out). A connection over its client's own cap (F5 in
  `fairness.py`) is answered `429` the same way.
- H2 a connection must send a complete request head within `header_timeout` seconds of opening or of its
  previous response; an idle keep-alive connection is closed after the same time (aiohttp's keep-alive
  timer, which runs from the moment a connection opens).
- H3 a request body must arrive within `body_timeout` seconds (`408`) and be at most `max_body` bytes
  (`413`); request lines and header fields are at most 8 KiB, 128 header fields (aiohttp: `400`).
- H4 at most `max_websockets` WebSockets (`503` to the upgrade), at most `max_subscriptions` running
  subscriptions on one WebSocket (an `error` message for the refused id).
- H5 a WebSocket that has no running subscription and sends nothing for `idle_timeout` seconds is closed
  (4408); a send to a WebSocket client that does not read which cannot complete within `send_timeout`
  drops the connection (aborted: its buffers and subscriptions are freed at once).
- H6 errors of the event loop that repeat (accept failing for want of resources, say) are logged once
  with their traceback, then counted and summarised at most every `_SUMMARY_EVERY` seconds.
- H7 every send to a WebSocket first waits until the bytes the node holds for it have drained below the
  transport's high-water mark (so a client that does not read holds at most about that much, not one
  buffer per subscription); a send that would still take the bytes queued to one WebSocket over
  `max_queued_bytes` drops the connection at once, the same way as H5, with a log line naming the figures.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from p2panda.node.api.fairness import Fairness, Refused

__all__ = ["CappedSite", "HttpLimits", "RateLimitedErrors"]

log = logging.getLogger(__name__)

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    b"Content-Length: 41\r\n\r\ntoo many connections to this node, retry\n"
)
_SUMMARY_EVERY = 10.0
_MAX_LINGERING = 64


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_connections: int = 256
    max_websockets: int = 64
    max_subscriptions: int = 32
    max_body: int = 1024 * 1024
    header_timeout: float = 15.0
    body_timeout: float = 30.0
    idle_timeout: float = 300.0
    send_timeout: float = 15.0
    max_queued_bytes: int = 1024 * 1024


class _Refused(asyncio.Protocol):
    """H1: one fixed answer, then close. Closing a socket with unread request bytes makes the kernel send a
    reset, which can destroy the answer before the client reads it: so the request is read and dropped
    until the client closes, for at most a second, and only for a bounded number of connections at once."""

    def __init__(self, site: CappedSite, answer: bytes = _BUSY) -> None:
        self._site = site
        self._answer = answer
        self._timer: asyncio.TimerHandle | None = None
        self._counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self._answer)
        if self._site.lingering >= _MAX_LINGERING:
            transport.close()
            return
        self._site.lingering += 1
        self._counted = True
        transport.write_eof()
        self._timer = asyncio.get_running_loop().call_later(1.0, transport.close)

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False  # close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._counted:
            self._site.lingering -= 1


def _too_many(refused: Refused) -> bytes:
    body = json.dumps({"data": None, "errors": [{"message": str(refused)}]}).encode()
    return (
        b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n"
        + f"Retry-After: {refused.retry_after}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


class _PerClient(asyncio.Protocol):
    """F5: the client of a new connection is known only once it is made: then either aiohttp's handler for
    it, to which everything is passed on, or a `429`."""

    def __init__(self, site: CappedSite, server: web.Server, fairness: Fairness) -> None:
        self._site = site
        self._server = server
        self._fairness = fairness
        self._inner: asyncio.Protocol | None = None
        self._client: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        try:
            self._client = self._fairness.connect(transport)
        except Refused as refused:
            self._inner = _Refused(self._site, _too_many(refused))
        else:
            self._inner = self._server()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        assert self._inner is not None
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        assert self._inner is not None
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        assert self._inner is not None
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        assert self._inner is not None
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is not None:
            self._inner.connection_lost(exc)
        if self._client is not None:
            self._fairness.disconnect(self._client)


class CappedSite(web.BaseSite):
    """A TCP site like aiohttp's `TCPSite` whose connections are capped (H1), in all and per client (F5)."""

    __slots__ = ("_fairness", "_host", "_last_warning", "_limit", "_port", "_refused", "lingering")

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, max_connections: int, fairness: Fairness | None = None
    ) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._fairness = fairness
        self._limit = max_connections
        self._refused = 0
        self._last_warning = 0.0
        self.lingering = 0  # refused connections not closed yet

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: self._protocol(server), self._host, self._port)
        if self._server.sockets:
            self._port = int(self._server.sockets[0].getsockname()[1])

    def _protocol(self, server: web.Server) -> asyncio.BaseProtocol:
        if len(server.connections) < self._limit:
            return server() if self._fairness is None else _PerClient(self, server, self._fairness)
        self._refused += 1
        now = time.monotonic()
        if now - self._last_warning >= _SUMMARY_EVERY:
            log.warning("HTTP: %d connections open (the limit): refused %d since", self._limit, self._refused)
            self._last_warning, self._refused = now, 0
        return _Refused(self)


class RateLimitedErrors:
    """H6: an event loop exception handler that logs a repeating error once, then a count now and then."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._seen: dict[str, tuple[float, int]] = {}  # message -> (last logged, suppressed since)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", "unhandled error in the event loop"))
        now = self._clock()
        last = self._seen.get(message)
        if last is None:
            self._seen[message] = (now, 0)
            loop.default_exception_handler(context)
            return
        logged, suppressed = last
        if now - logged < _SUMMARY_EVERY:
            self._seen[message] = (logged, suppressed + 1)
            return
        self._seen[message] = (now, 0)
        log.error("%s (again; %d more in the last %.0f s)", message, suppressed + 1, now - logged)
