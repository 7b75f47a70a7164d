"""Fair shares of the node's HTTP server between its clients, so that one client cannot starve the others
by sending many expensive requests at once (each within the per-request limits of `cost.py`).

- F1 a client is its remote IP address. A connection from this machine (a loopback peer, or a peer whose
  address is the one it connected to) is its local user: the uid that owns the client's socket, read from
  /proc/net/tcp or tcp6, since every program on the machine shares 127.0.0.1. Where the owner cannot be
  read (not Linux), the client is the connection.
- F2 at most `max_requests` requests of one client are handled at once; the next get `429` (WebSocket
  upgrades are not counted: H4 in `limits.py` bounds them).
- F3 every client has a budget of the event loop's time: `time_burst` seconds, refilled at `time_rate`
  seconds per second. Each step a request's handler or GraphQL execution takes on the event loop is
  measured and taken from it (its database reads run in threads and are not counted); a request is
  admitted only while the budget is positive, so a client goes at most `max_requests` requests' time into
  debt, and while in debt gets `429` with `Retry-After`: the whole seconds until it is paid back. A step
  cannot be interrupted: a client holds the event loop for at most `max_requests` of its longest steps at
  once, then for `time_rate` of the time.
- F4 the table of clients is bounded: when it holds more than `_MAX_CLIENTS`, clients with no request
  running, no connection open and a full budget are forgotten (one comes back with a full budget, as it was).
- F5 at most `max_connections` connections of one client are open at once; the next is answered `429` and
  closed (H1 in `limits.py`), so one client cannot take every connection the server allows.
- F6 a WebSocket's time is its client's too: each step its handler takes (a message read, a subscription
  started) and each step of each of its subscriptions (an event's answer built, then sent) is taken from
  the client's budget of F3. While the client is in debt, its WebSockets wait before handling their next
  message, and its subscriptions, once an event arrives, wait before building its answer: a client with
  many subscriptions gets `time_rate` of the event loop like any other, and goes into debt by at most one
  step. Events wait meanwhile in the subscription's bounded queue (a subscription that falls 1024 behind
  ends with an error, `changes.py`). A WebSocket is not a request of F2 (H4 bounds them).

A refused request gets `{"data": null, "errors": [{"message": ...}]}` naming the client and the setting.
Time rather than the GraphQL cost of Q4/Q5: the event loop is what clients share, and the cost is an
estimate per request (it counts fields answered, not the time each takes), which a client can make many of.
aiohttp has no server-side limits per client (its own `client_max_size` and our `CappedSite` are global);
the packages that add them count requests per IP address, which neither tells local users apart nor
weighs a request by its work.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import sys
import time
import weakref
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware

from p2panda.node.errors import NodeError

__all__ = ["TICKET", "ClientLimits", "Fairness", "Refused", "Ticket", "fairness_guard", "socket_owner"]

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_MAX_CLIENTS = 1024


@dataclass(frozen=True, slots=True)
class ClientLimits:
    max_connections: int = 64
    max_requests: int = 4
    time_burst: float = 2.0
    time_rate: float = 0.5


@dataclass(slots=True)
class _Client:
    budget: float
    updated: float
    running: int = 0
    connections: int = 0


class Refused(NodeError):
    """F2, F3: a request refused; `retry_after`: the seconds after which a retry may pass."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Ticket:
    """One admitted request: takes the event-loop time of the awaitables it runs from its client's budget."""

    def __init__(self, fairness: Fairness, client: str) -> None:
        self._fairness = fairness
        self.client = client
        self.spent = 0.0

    def timed(self, awaitable: Awaitable[T]) -> Awaitable[T]:
        return _Timed(awaitable, self)

    def charge(self, seconds: float) -> None:
        self.spent += seconds
        self._fairness.charge(self.client, seconds)


TICKET = web.RequestKey("p2panda.fairness.ticket", Ticket)


class _Timed(Awaitable[T]):
    """F3: runs `awaitable` as `await` would, timing each step it takes on the event loop."""

    def __init__(self, awaitable: Awaitable[T], ticket: Ticket) -> None:
        self._awaitable = awaitable
        self._ticket = ticket

    def __await__(self) -> Generator[Any, Any, T]:
        steps = self._awaitable.__await__()
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            start = time.perf_counter()
            try:
                yielded = steps.send(sent) if thrown is None else steps.throw(thrown)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            finally:
                self._ticket.charge(time.perf_counter() - start)
            try:
                sent, thrown = (yield yielded), None
            except GeneratorExit:
                steps.close()
                raise
            except BaseException as exc:  # a cancellation, passed on to the awaitable as `await` would
                sent, thrown = None, exc


class Fairness:
    """F1-F4 over the clients of one HTTP server. `clock` gives seconds (monotonic)."""

    def __init__(self, limits: ClientLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._clients: dict[str, _Client] = {}
        self._owners: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()

    def _client(self, client: str) -> _Client:
        now = self._clock()
        state = self._clients.get(client)
        if state is None:
            if len(self._clients) >= _MAX_CLIENTS:
                self._forget(now)
            state = self._clients[client] = _Client(self.limits.time_burst, now)
        else:
            state.budget = min(self.limits.time_burst, state.budget + (now - state.updated) * self.limits.time_rate)
            state.updated = now
        return state

    def _forget(self, now: float) -> None:  # F4
        limits = self.limits
        for name, state in list(self._clients.items()):
            if (
                state.running == 0
                and state.connections == 0
                and state.budget + (now - state.updated) * limits.time_rate >= limits.time_burst
            ):
                del self._clients[name]

    def admit(self, client: str) -> Ticket:
        """F2, F3: a ticket for a request of `client`, or `Refused`. Call `release` when it is answered."""
        state = self._client(client)
        if state.running >= self.limits.max_requests:
            raise Refused(
                f"too many requests at once from {client} (limit {self.limits.max_requests}; "
                "client_limits.max_requests), retry when one is answered",
                1,
            )
        if state.budget <= 0:
            wait = max(1, math.ceil(-state.budget / self.limits.time_rate))
            raise Refused(
                f"{client} used its share of the node's time (client_limits.time_burst "
                f"{self.limits.time_burst:g} s, refilled at client_limits.time_rate {self.limits.time_rate:g} s "
                f"per second), retry in {wait} s",
                wait,
            )
        state.running += 1
        return Ticket(self, client)

    def connect(self, transport: asyncio.BaseTransport) -> str:
        """F1, F5: the client of a new connection, counted until `disconnect`; or `Refused`."""
        client = self._identify(transport)
        state = self._client(client)
        if state.connections >= self.limits.max_connections:
            raise Refused(
                f"too many connections from {client} (limit {self.limits.max_connections}; "
                "client_limits.max_connections), retry when one is closed",
                1,
            )
        state.connections += 1
        return client

    def ticket(self, client: str) -> Ticket:
        """F6: a ticket for a WebSocket of `client`, not counted as a request (no `release`)."""
        return Ticket(self, client)

    async def pace(self, client: str) -> None:
        """F6: returns at once while `client` has budget left, else once its debt is paid back."""
        while (budget := self.budget(client)) <= 0:
            await asyncio.sleep(-budget / self.limits.time_rate + 0.01)

    def disconnect(self, client: str) -> None:
        self._client(client).connections -= 1

    def release(self, ticket: Ticket) -> None:
        self._client(ticket.client).running -= 1

    def charge(self, client: str, seconds: float) -> None:
        self._client(client).budget -= seconds

    def budget(self, client: str) -> float:
        return self._client(client).budget

    def client_of(self, request: web.Request) -> str:
        """F1, cached per connection."""
        transport = request.transport
        if transport is None:
            return "a closed connection"
        return self._identify(transport)

    def _identify(self, transport: asyncio.BaseTransport) -> str:
        known = self._owners.get(transport)
        if known is None:
            known = self._owners[transport] = _identify(transport.get_extra_info("peername"), transport)
        return known


def _identify(peer: Any, transport: Any) -> str:
    if not isinstance(peer, tuple) or len(peer) < 2:
        return f"connection {id(transport):x}"  # a Unix socket: none are opened today
    host, port = str(peer[0]), int(peer[1])
    local = transport.get_extra_info("sockname")
    address = ipaddress.ip_address(host)
    if not (address.is_loopback or (isinstance(local, tuple) and str(local[0]) == host)):
        return f"address {host}"
    uid = socket_owner(address, port, ipaddress.ip_address(local[0]), int(local[1]))
    if uid is None:
        return f"connection {host}:{port}"
    return f"local user {uid}"


def _proc_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> str:
    """An address as /proc/net/tcp{,6} prints it: each 32-bit word of the network-order address printed as
    a number in the machine's byte order, then the port."""
    raw = address.packed
    words = "".join(f"{int.from_bytes(raw[i : i + 4], sys.byteorder):08X}" for i in range(0, len(raw), 4))
    return f"{words}:{port:04X}"


def socket_owner(
    client: ipaddress.IPv4Address | ipaddress.IPv6Address,
    client_port: int,
    server: ipaddress.IPv4Address | ipaddress.IPv6Address,
    server_port: int,
    proc: Path = Path("/proc/self/net"),
) -> int | None:
    """The uid owning the client end of a TCP connection on this machine, or None if not found."""
    table = proc / ("tcp" if client.version == 4 else "tcp6")
    wanted = (_proc_address(client, client_port), _proc_address(server, server_port))
    try:
        with table.open() as lines:
            next(lines, None)
            for line in lines:
                fields = line.split()
                if (fields[1], fields[2]) == wanted:
                    return int(fields[7])
    except OSError:
        return None
    return None


def fairness_guard(fairness: Fairness) -> Middleware:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        client = fairness.client_of(request)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            # F6: H4 bounds WebSockets, which live long and idle mostly; their time is charged all the same.
            ticket = request[TICKET] = fairness.ticket(client)
            return await ticket.timed(handler(request))
        try:
            ticket = fairness.admit(client)
        except Refused as refused:
            return web.json_response(
                {"data": None, "errors": [{"message": str(refused)}]},
                status=429,
                headers={"Retry-After": str(refused.retry_after)},
            )
        request[TICKET] = ticket
        try:
            return await ticket.timed(handler(request))
        finally:
            fairness.release(ticket)

    return guard
