"""H7 in p2panda/node/api/limits.py, against a real `panda node`: a WebSocket client with ten subscriptions
that never reads is dropped once the bytes the node queues for it pass `max_queued_bytes`, and the node's
memory stays bounded; a client that reads, with the same subscriptions on the same node, is not dropped
and receives every event (the positive control). `send_timeout` is long here, so that only H7 can drop."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from node_adapter import RemoteNode
from tests.abuse.conftest import StartNode
from tests.abuse.probes import rss_bytes
from tests.abuse.test_connections import SUBSCRIBE, non_reading_subscriber_streams, port_of
from tests.p2panda.node.test_replication import ALICE, SCHEMA

SUBSCRIPTIONS = 10
LIMITS = f"""
[http_limits]
max_websockets = 4
max_subscriptions = {SUBSCRIPTIONS}
send_timeout = 300
max_queued_bytes = 32768
"""
DROPPED = "dropped a WebSocket client that does not keep up"


async def _reading_subscriber(url: str) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
    session = aiohttp.ClientSession()
    socket = await session.ws_connect(url, protocols=("graphql-transport-ws",))
    await socket.send_json({"type": "connection_init"})
    assert await socket.receive_json(timeout=10) == {"type": "connection_ack"}
    for ident in range(SUBSCRIPTIONS):
        await socket.send_json({"id": str(ident), "type": "subscribe", "payload": {"query": SUBSCRIBE}})
    await socket.send_json({"type": "ping"})  # answered once every subscription is live
    assert await socket.receive_json(timeout=10) == {"type": "pong"}
    return session, socket


async def _read_all(socket: aiohttp.ClientWebSocketResponse, seen: dict[str, set[str]]) -> None:
    """Every `next` message's document id, by subscription id; anything else fails the test."""
    async for frame in socket:
        assert frame.type is aiohttp.WSMsgType.TEXT, frame
        message = json.loads(frame.data)
        assert message["type"] == "next", message
        seen.setdefault(message["id"], set()).add(message["payload"]["data"]["documentChanged"]["documentId"])


async def test_a_subscriber_that_does_not_read_is_dropped_by_bytes_queued(
    start_node: StartNode, vectors: dict[str, object]
) -> None:
    node = start_node(LIMITS)
    assert node.proc is not None
    async with RemoteNode(node.url) as remote:
        flow = vectors["node_flow"]
        assert isinstance(flow, dict)
        for step in flow["steps"][:2]:  # the message schema
            await remote.publish(bytes.fromhex(step["entry"]), bytes.fromhex(step["operation"]))
        session, reader = await _reading_subscriber(node.url)
        seen: dict[str, set[str]] = {}
        reading = asyncio.ensure_future(_read_all(reader, seen))
        dropped, writer = await non_reading_subscriber_streams(port_of(node), subscriptions=SUBSCRIPTIONS)
        try:
            before = rss_bytes(node.proc.pid)
            published: set[str] = set()
            started = time.monotonic()
            while not any(DROPPED in line for line in node.log):
                assert time.monotonic() - started < 60, "the node kept a subscriber that read nothing for 60 s"
                for _ in range(10):
                    published.add(str(await remote.create(ALICE, SCHEMA, {"message": "x" * 1000})))
            dropped_after = time.monotonic() - started
            line = next(line for line in node.log if DROPPED in line)
            assert "over the limit of 32768" in line, line
            for _ in range(10):  # the reader still gets events after the other client is gone
                published.add(str(await remote.create(ALICE, SCHEMA, {"message": "x" * 1000})))
            # The dropped client's connection is closed: what it had received is followed by its end.
            async with asyncio.timeout(10):
                try:
                    while await dropped.read(65536):
                        pass
                except ConnectionResetError:
                    pass  # aborted by the node (H7), which is the point
            deadline = time.monotonic() + 30
            while any(len(seen.get(str(i), ())) < len(published) for i in range(SUBSCRIPTIONS)):
                assert not reading.done(), reading.result()
                assert time.monotonic() < deadline, {k: len(v) for k, v in seen.items()}
                await asyncio.sleep(0.1)
            assert {str(i): seen[str(i)] for i in range(SUBSCRIPTIONS)} == {
                str(i): published for i in range(SUBSCRIPTIONS)
            }
            assert sum(DROPPED in line for line in node.log) == 1  # the reader was never dropped
            assert rss_bytes(node.proc.pid) - before < 32 * 1024 * 1024
            assert dropped_after < 60  # and, in the log of a passing run, within a few seconds
        finally:
            reading.cancel()
            writer.close()
            await session.close()
