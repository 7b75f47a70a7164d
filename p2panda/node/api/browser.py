"""What a web page open in the user's browser may do with the node's HTTP API: by default, nothing.

A page from any site can make the browser send requests to 127.0.0.1; these checks keep it from reading
or writing through the node. Tools that are not browsers (curl, `RemoteNode`) send no `Origin` and pass.

- B1 `Host` must name this machine's loopback (`localhost`, `*.localhost`), be an IP address, or be in
  `allowed_hosts` (403 otherwise): a page on a name that its owner re-points at 127.0.0.1 (DNS rebinding)
  is refused, since its requests carry that name.
- B2 a request with an `Origin` header (browsers send one with every cross-origin request, every POST and
  every WebSocket handshake) is refused (403) unless the origin is in `allowed_origins`.
- B3 CORS headers go only to allowed origins, naming that origin (never `*`).
- B4 `POST /graphql` needs `Content-Type: application/json` (415 otherwise): a page cannot send a
  "simple" cross-origin POST (form or `text/plain`) that skips the browser's preflight.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

__all__ = ["BrowserPolicy", "browser_guard", "host_name"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class BrowserPolicy:
    """`allowed_origins`: `scheme://host[:port]`, lower case; `allowed_hosts`: host names, lower case."""

    allowed_origins: frozenset[str] = frozenset()
    allowed_hosts: frozenset[str] = frozenset()

    def host_allowed(self, host_header: str) -> bool:
        name = host_name(host_header)
        if name == "localhost" or name.endswith(".localhost") or name in self.allowed_hosts:
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True


def host_name(host_header: str) -> str:
    """The host of a `Host` header, without port or brackets, lower case, without a trailing dot."""
    text = host_header.strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    name, sep, port = text.rpartition(":")
    if sep and port.isdigit():
        text = name
    return text.rstrip(".")


def _refuse(status: int, message: str) -> web.Response:
    return web.json_response({"data": None, "errors": [{"message": message}]}, status=status)


def browser_guard(policy: BrowserPolicy) -> Middleware:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        if host is not None and not policy.host_allowed(host):
            return _refuse(403, f"host {host_name(host)!r} is not allowed (allowed_hosts in the node's config)")  # B1
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() not in policy.allowed_origins:
            return _refuse(403, f"origin {origin!r} is not allowed (allowed_origins in the node's config)")  # B2
        cors = {} if origin is None else _cors_headers(origin)  # B3
        if request.method == "OPTIONS":
            return web.Response(status=204, headers=cors)
        if request.method == "POST" and request.content_type != "application/json":
            response: web.StreamResponse = _refuse(
                415, f"POST needs Content-Type: application/json, not {request.content_type!r}"
            )  # B4
        else:
            response = await handler(request)
        if cors and not response.prepared:
            response.headers.update(cors)
        return response

    return guard


def _cors_headers(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type",
        "Vary": "Origin",
    }
