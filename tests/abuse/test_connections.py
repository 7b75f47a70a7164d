"""One client against the node's HTTP server (H1-H5 in p2panda/node/api/limits.py), with small limits so
that each probe runs in seconds: idle and slow connections are closed, caps answer 503, a client that does
not read its WebSocket is dropped while a simple query stays fast and the node's memory stays bounded."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from typing import Any

import aiohttp
import pytest

from node_adapter import RemoteNode
from tests.abuse.conftest import StartNode
from tests.abuse.probes import http_response, raw_http, rss_bytes, tiny_receive_buffer_socket
from tests.p2panda.node.process import PandaNode
from tests.p2panda.node.test_replication import ALICE, SCHEMA

LIMITS = """
[http_limits]
max_connections = 8
max_websockets = 2
max_subscriptions = 3
max_body = 65536
header_timeout = 2
body_timeout = 2
idle_timeout = 2
send_timeout = 2
"""
QUERY = {"query": "{ __typename }"}
SUBSCRIBE = "subscription { documentChanged { documentId viewId schemaId operationId publicKey deleted } }"


def port_of(node: PandaNode) -> int:
    return int(node.url.rsplit(":", 1)[1].split("/")[0])


async def simple_query(url: str) -> float:
    """Seconds a `{ __typename }` takes; fails on anything but the right answer."""
    start = time.monotonic()
    async with aiohttp.ClientSession() as session, session.post(url, json=QUERY) as response:
        assert response.status == 200
        assert await response.json() == {"data": {"__typename": "Query"}}
    return time.monotonic() - start


async def test_connections_are_capped_and_idle_ones_closed(start_node: StartNode) -> None:
    node = start_node(LIMITS)
    port = port_of(node)
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(8)]
    await asyncio.sleep(0.2)
    refused = await raw_http(port, b"POST /graphql HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert refused.startswith(b"HTTP/1.1 503 Service Unavailable")  # H1
    assert refused.endswith(b"too many connections to this node, retry\n")
    opened = time.monotonic()
    for reader, writer in idle:
        async with asyncio.timeout(6):
            assert await reader.read() == b""  # H2: closed by the node, having sent nothing
        writer.close()
    assert 1.5 < time.monotonic() - opened < 6
    assert await simple_query(node.url) < 1


async def test_a_request_head_sent_slowly_is_cut_off(start_node: StartNode) -> None:
    node = start_node(LIMITS)
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(node))
    opened = time.monotonic()
    head = b"POST /graphql HTTP/1.1\r\nHost: localhost\r\n" + b"X-Slow: " + b"a" * 200
    closed_after = None
    for byte in head:
        writer.write(bytes([byte]))
        try:
            async with asyncio.timeout(0.2):
                if await reader.read() == b"":
                    closed_after = time.monotonic() - opened
                    break
        except TimeoutError:
            continue
    writer.close()
    assert closed_after is not None, "the node waited for a head trickled over more than 40 s"
    assert 1.5 < closed_after < 6  # H2, although a byte arrived every 0.2 s


async def test_a_body_sent_slowly_or_too_big_is_refused(start_node: StartNode) -> None:
    node = start_node(LIMITS)
    head = b"POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    started = time.monotonic()
    answer = await http_response(port_of(node), head + b'{"query":')
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer  # H3
    assert b"request body not received within 2 s" in answer
    assert 1.5 < time.monotonic() - started < 6
    async with (
        aiohttp.ClientSession() as session,
        session.post(node.url, json={"query": "{ __typename }", "pad": "x" * 70_000}) as response,
    ):
        assert response.status == 413
    assert await simple_query(node.url) < 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"query": "{ __typename }", "variables": [1]}, "variables must be an object, not list"),
        ({"query": "{ __typename }", "operationName": 7}, "operationName must be a string, not int"),
        ([QUERY], "the request must be a JSON object, not list"),
        ({"query": None}, "query must be a string"),
    ],
)
async def test_malformed_requests_get_400(start_node: StartNode, body: Any, message: str) -> None:
    node = start_node(LIMITS)
    async with aiohttp.ClientSession() as session, session.post(node.url, json=body) as response:
        assert response.status == 400
        assert await response.json() == {"data": None, "errors": [{"message": f"malformed GraphQL request: {message}"}]}


async def test_websockets_and_subscriptions_are_capped(start_node: StartNode) -> None:
    node = start_node(LIMITS)
    async with aiohttp.ClientSession() as session:
        first = await session.ws_connect(node.url, protocols=("graphql-transport-ws",))
        second = await session.ws_connect(node.url, protocols=("graphql-transport-ws",))
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(node.url, protocols=("graphql-transport-ws",))
        assert refused.value.status == 503  # H4
        await first.send_json({"type": "connection_init"})
        assert await first.receive_json(timeout=10) == {"type": "connection_ack"}
        for ident in "abc":
            await first.send_json({"id": ident, "type": "subscribe", "payload": {"query": SUBSCRIBE}})
        await first.send_json({"id": "d", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
        assert await first.receive_json(timeout=10) == {
            "id": "d",
            "type": "error",
            "payload": [{"message": "too many subscriptions on this connection (limit 3)"}],
        }
        await second.close()
        await asyncio.sleep(0.2)
        third = await session.ws_connect(node.url, protocols=("graphql-transport-ws",))
        await third.close()
        # The subscribed socket outlives the idle timeout (H5 applies to sockets without a subscription).
        await asyncio.sleep(3)
        await first.send_json({"type": "ping"})
        assert await first.receive_json(timeout=10) == {"type": "pong"}
        await first.close()


async def test_an_idle_websocket_is_closed(start_node: StartNode) -> None:
    node = start_node(LIMITS)
    async with aiohttp.ClientSession() as session:
        socket = await session.ws_connect(node.url, protocols=("graphql-transport-ws",))
        await socket.send_json({"type": "connection_init"})
        assert await socket.receive_json(timeout=10) == {"type": "connection_ack"}
        started = time.monotonic()
        closing = await socket.receive(timeout=10)
        assert closing.type is aiohttp.WSMsgType.CLOSE
        assert (closing.data, closing.extra) == (4408, "idle without a subscription")  # H5
        assert 1.5 < time.monotonic() - started < 6


def _frame(message: dict[str, Any]) -> bytes:
    """A masked WebSocket text frame, as a client must send it."""
    payload = json.dumps(message).encode()
    mask = os.urandom(4)
    assert len(payload) < 65536
    length = (
        bytes([0x80 | len(payload)]) if len(payload) < 126 else bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
    )
    return bytes([0x81]) + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def _non_reading_subscriber(port: int, subscriptions: int = 3) -> asyncio.StreamWriter:
    return (await non_reading_subscriber_streams(port, subscriptions))[1]


async def non_reading_subscriber_streams(
    port: int, subscriptions: int = 3
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket with `subscriptions` live subscriptions whose client reads nothing after the upgrade (its
    receive buffer is tiny; the stream reader takes at most its 64 KiB limit)."""
    sock = tiny_receive_buffer_socket()
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /graphql HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    writer.write(_frame({"type": "connection_init"}))
    for ident in range(subscriptions):
        writer.write(_frame({"id": str(ident), "type": "subscribe", "payload": {"query": SUBSCRIBE}}))
    await writer.drain()
    return reader, writer  # never read from again


async def test_a_subscriber_that_does_not_read_is_dropped(start_node: StartNode, vectors: dict[str, Any]) -> None:
    node = start_node(LIMITS)
    assert node.proc is not None
    async with RemoteNode(node.url) as remote:
        for step in vectors["node_flow"]["steps"][:2]:  # the message schema
            await remote.publish(bytes.fromhex(step["entry"]), bytes.fromhex(step["operation"]))
        before = rss_bytes(node.proc.pid)
        writer = await _non_reading_subscriber(port_of(node))
        latencies = []
        deadline = time.monotonic() + 60
        while not any("dropped a WebSocket client" in line for line in node.log):
            assert time.monotonic() < deadline, "the node kept a subscriber that read nothing for 60 s"
            for _ in range(10):
                await remote.create(ALICE, SCHEMA, {"message": "x" * 1000})
            latencies.append(await simple_query(node.url))
        writer.close()
        assert max(latencies) < 1, latencies
        # Its socket and subscriptions are gone: both WebSocket slots are free again (limit 2).
        async with aiohttp.ClientSession() as session:
            sockets = [await session.ws_connect(node.url, protocols=("graphql-transport-ws",)) for _ in range(2)]
            for socket in sockets:
                await socket.close()
        assert rss_bytes(node.proc.pid) - before < 64 * 1024 * 1024


async def test_running_out_of_file_descriptors_is_logged_once(start_node: StartNode) -> None:
    # H6: the node logged 408 MB in 15 s once its file descriptors ran out. Under a limit of 96
    # files, 300 connections make accept fail over and over (positive control: the failure is logged, and
    # counted again after 10 s); the log stays small and the node answers once they are closed.
    node = start_node(prefix=["prlimit", "--nofile=96", "--"])
    logged = sum(len(line) for line in node.log)
    held = [await asyncio.open_connection("127.0.0.1", port_of(node)) for _ in range(300)]
    deadline = time.monotonic() + 30
    while not any("(again; " in line for line in node.log):
        assert time.monotonic() < deadline, "".join(node.log[-20:])
        await asyncio.sleep(0.5)
    assert any("Too many open files" in line for line in node.log)
    assert sum(len(line) for line in node.log) - logged < 16 * 1024, "".join(node.log[-20:])
    for _, writer in held:
        writer.close()
    await asyncio.sleep(1)
    assert await simple_query(node.url) < 1
