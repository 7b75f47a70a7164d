"""A web page in the user's browser against a real `panda node` (B1-B4 in p2panda/node/api/browser.py):
the requests a browser would send for a hostile page are refused; the same requests from a tool, or from
an origin the user allowed, pass."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.abuse.conftest import StartNode

QUERY = {"query": "{ __typename }"}
EVIL = "https://evil.example"


async def post(url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> tuple[int, dict[str, Any], Any]:
    async with aiohttp.ClientSession() as session, session.post(url, headers=headers, **kwargs) as response:
        body = await response.json(content_type=None)
        return response.status, dict(response.headers), body


async def test_a_rebound_host_name_is_refused(start_node: StartNode) -> None:
    node = start_node()
    status, _, body = await post(node.url, {"Host": "evil.example:2020"}, json=QUERY)
    assert status == 403  # B1
    assert body["errors"][0]["message"] == "host 'evil.example' is not allowed (allowed_hosts in the node's config)"
    for host in ("localhost:2020", "127.0.0.1", "[::1]:2020", "app.localhost"):
        status, _, body = await post(node.url, {"Host": host}, json=QUERY)
        assert (status, body) == (200, {"data": {"__typename": "Query"}}), host


async def test_a_foreign_origin_is_refused_and_gets_no_cors(start_node: StartNode) -> None:
    node = start_node()
    status, headers, body = await post(node.url, {"Origin": EVIL}, json=QUERY)
    assert status == 403  # B2
    assert body["errors"][0]["message"] == f"origin '{EVIL}' is not allowed (allowed_origins in the node's config)"
    assert "Access-Control-Allow-Origin" not in headers  # B3
    async with (
        aiohttp.ClientSession() as session,
        session.options(node.url, headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"}) as preflight,
    ):
        assert preflight.status == 403
        assert "Access-Control-Allow-Origin" not in preflight.headers


async def test_a_simple_cross_site_post_is_refused(start_node: StartNode) -> None:
    node = start_node()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        status, _, body = await post(node.url, {"Content-Type": content_type}, data=b'{"query": "{ __typename }"}')
        assert status == 415, content_type  # B4
        assert body["errors"][0]["message"].startswith("POST needs Content-Type: application/json")
    status, _, body = await post(node.url, {"Content-Type": "application/json; charset=utf-8"}, json=QUERY)
    assert (status, body) == (200, {"data": {"__typename": "Query"}})


async def test_a_websocket_from_a_foreign_origin_is_refused(start_node: StartNode) -> None:
    node = start_node()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(node.url, protocols=("graphql-transport-ws",), origin=EVIL)
        assert refused.value.status == 403
        async with session.ws_connect(node.url, protocols=("graphql-transport-ws",)) as socket:
            await socket.send_json({"type": "connection_init"})
            assert await socket.receive_json(timeout=10) == {"type": "connection_ack"}


async def test_allowed_origins_and_hosts(start_node: StartNode) -> None:
    node = start_node('allowed_origins = ["http://localhost:5173"]\nallowed_hosts = ["panda.lan"]\n')
    status, headers, body = await post(node.url, {"Origin": "http://localhost:5173"}, json=QUERY)
    assert (status, body) == (200, {"data": {"__typename": "Query"}})
    assert headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert headers["Vary"] == "Origin"
    status, _, _ = await post(node.url, {"Host": "panda.lan:2020"}, json=QUERY)
    assert status == 200
    status, _, _ = await post(node.url, {"Origin": "http://localhost:5174"}, json=QUERY)
    assert status == 403
    async with aiohttp.ClientSession() as session:
        socket = await session.ws_connect(node.url, protocols=("graphql-transport-ws",), origin="http://localhost:5173")
        await socket.close()
