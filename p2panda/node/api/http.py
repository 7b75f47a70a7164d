"""The node's HTTP server: `POST /graphql` (and a small `GET /graphql` page), CORS for any origin.

Starts and stops cleanly inside the caller's event loop (aiohttp AppRunner). Binds 127.0.0.1 by default.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from p2panda.node.api.graphql import GraphQLApi

__all__ = ["HttpServer"]

log = logging.getLogger(__name__)

_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
}
MAX_BODY = 1024 * 1024


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
        self.app.router.add_get("/graphql", self._page)

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
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _page(self, _request: web.Request) -> web.Response:
        return web.Response(text="p2panda node: POST GraphQL queries to this URL\n")

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
