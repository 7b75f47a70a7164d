"""Beyond aquadoggo's query API: blobs over HTTP, subscriptions over WebSocket, schema allow-list,
bundles ingested at start."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from node_adapter import EmbeddedNode
from p2panda import KeyPair
from p2panda.hash import Hash
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.node import Node, NodeConfig, SchemaNotAllowed
from p2panda.node.api import GraphQLApi, HttpServer
from p2panda.node.bundle import BundleError, encode_bundle
from p2panda.node.changes import Changes, DocumentChanged, SubscriptionLagged
from p2panda.operation.value import PinnedRelationList
from p2panda.schema import SYSTEM_SCHEMAS, SchemaId, SystemSchema

from .helpers import fingerprint

KP = KeyPair.from_private_key(bytes(range(32)))
BLOB = SYSTEM_SCHEMAS[SchemaId.system_schema(SystemSchema.BLOB_V1)]
PIECE = SYSTEM_SCHEMAS[SchemaId.system_schema(SystemSchema.BLOB_PIECE_V1)]
MESSAGE = "message_0020d4f2294b7e953e70dd476b5de39d1679ff06a4936bca3ef6fb227e83a126a767"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedNode, str]]:
    async with EmbeddedNode(tmp_path) as node:
        server = HttpServer(GraphQLApi(node.node), port=0)
        await server.start()
        try:
            yield node, f"http://127.0.0.1:{server.port}"
        finally:
            await server.stop()


async def test_blobs_are_served_with_etag(served: tuple[EmbeddedNode, str]) -> None:
    node, base = served
    parts = [b"hello ", b"blob ", b"world"]
    pieces = [DocumentViewId([await node.create(KP, PIECE, {"data": p})]) for p in parts]
    fields: dict[str, Any] = {"length": 16, "mime_type": "text/plain", "pieces": PinnedRelationList(tuple(pieces))}
    blob = await node.create(KP, BLOB, fields)
    short = await node.create(KP, BLOB, {**fields, "length": 99})
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/blobs/{blob.hex()}") as response:
            assert response.status == 200 and await response.read() == b"hello blob world"
            assert response.content_type == "text/plain"
            etag = response.headers["ETag"]
            assert etag == f'"{blob.hex()}"'
        async with http.get(f"{base}/blobs/{blob.hex()}", headers={"If-None-Match": etag}) as response:
            assert response.status == 304 and await response.read() == b""
        async with http.get(f"{base}/blobs/{blob.hex()}/{blob.hex()}") as response:
            assert response.status == 200 and await response.read() == b"hello blob world"
        async with http.get(f"{base}/blobs/{short.hex()}") as response:
            assert response.status == 404  # length does not match the pieces
        async with http.get(f"{base}/blobs/{pieces[0]}") as response:
            assert response.status == 404  # not a blob
        async with http.get(f"{base}/blobs/{Hash.of(b'nothing').hex()}") as response:
            assert response.status == 404
        async with http.get(f"{base}/blobs/{blob.hex()}/{short.hex()}") as response:
            assert response.status == 404  # a view of another document
        async with http.get(f"{base}/blobs/not-hex") as response:
            assert response.status == 400


async def test_websocket_protocol(served: tuple[EmbeddedNode, str]) -> None:
    node, base = served
    query = "subscription { documentChanged { documentId schemaId } }"
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{base}/graphql", protocols=("graphql-transport-ws",)) as ws:
            await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
            await ws.receive()
            assert ws.close_code == 4401
        async with http.ws_connect(f"{base}/graphql", protocols=("graphql-transport-ws",)) as ws:
            await ws.send_json({"type": "connection_init"})
            assert (await ws.receive_json())["type"] == "connection_ack"
            await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": "subscription { nope }"}})
            error = await ws.receive_json()
            assert error["type"] == "error" and "nope" in error["payload"][0]["message"]
            await ws.send_json({"id": "2", "type": "subscribe", "payload": {"query": query}})
            await ws.send_json({"type": "ping"})
            assert (await ws.receive_json())["type"] == "pong"
            piece = await node.create(KP, PIECE, {"data": b"x"})
            change = await asyncio.wait_for(ws.receive_json(), 10)
            assert change == {
                "id": "2",
                "type": "next",
                "payload": {"data": {"documentChanged": {"documentId": piece.hex(), "schemaId": "blob_piece_v1"}}},
            }
            await ws.send_json({"id": "2", "type": "subscribe", "payload": {"query": query}})
            await ws.receive()
            assert ws.close_code == 4409


async def test_slow_subscriber_is_cut_off_not_buffered_forever() -> None:
    hub = Changes()
    change = DocumentChanged(
        DocumentId(Hash.of(b"d").to_bytes()),
        "blob_piece_v1",
        DocumentViewId([Hash.of(b"d")]),
        Hash.of(b"d"),
        KP.public_key,
        False,
    )
    slow = hub.subscribe(capacity=2)
    fast = hub.subscribe(capacity=10)
    for _ in range(3):
        hub.publish(change)
    assert await anext(slow) == change and await anext(slow) == change
    with pytest.raises(SubscriptionLagged):
        await anext(slow)
    for _ in range(3):
        assert await anext(fast) == change
    hub.close()
    with pytest.raises(StopAsyncIteration):
        await anext(fast)


async def test_allow_list_refuses_other_application_schemas(tmp_path: Path, vectors: dict[str, Any]) -> None:
    steps = vectors["node_flow"]["steps"]
    async with Node(NodeConfig(tmp_path, allow_schema_ids=frozenset({"other_0020" + "00" * 33}))) as node:
        for step in steps[:2]:  # the schema definitions themselves are system-schema documents
            await node.publish(bytes.fromhex(step["entry"]), bytes.fromhex(step["operation"]))
        before = await fingerprint(node)
        with pytest.raises(SchemaNotAllowed, match=MESSAGE):
            await node.publish(bytes.fromhex(steps[2]["entry"]), bytes.fromhex(steps[2]["operation"]))
        assert await fingerprint(node) == before
        schema = GraphQLApi(node).schema()
        assert f"all_{MESSAGE}" not in schema.query_type.fields  # type: ignore[union-attr]
    async with Node(NodeConfig(tmp_path, allow_schema_ids=frozenset({MESSAGE}))) as node:
        await node.publish(bytes.fromhex(steps[2]["entry"]), bytes.fromhex(steps[2]["operation"]))


async def test_bundles_are_ingested_at_start_idempotently(tmp_path: Path, vectors: dict[str, Any]) -> None:
    steps = vectors["node_flow"]["steps"]
    bundle = tmp_path / "flow.bundle"
    bundle.write_bytes(encode_bundle([(bytes.fromhex(s["entry"]), bytes.fromhex(s["operation"])) for s in steps]))
    config = NodeConfig(tmp_path / "data", bundles=(bundle,))
    async with Node(config) as node:
        doc = await node.document(DocumentId.from_hex(steps[2]["entry_hash"]))
        assert doc is not None and doc.fields == {"message": "Hello again"}
        first = await fingerprint(node)
    async with Node(config) as node:
        assert await fingerprint(node) == first
        assert (
            await node.ingest_bundle([(bytes.fromhex(s["entry"]), bytes.fromhex(s["operation"])) for s in steps]) == 0
        )
    broken = tmp_path / "broken.bundle"
    broken.write_bytes(encode_bundle([(bytes.fromhex(steps[3]["entry"]), bytes.fromhex(steps[3]["operation"]))]))
    with pytest.raises(BundleError, match="item 0"):
        async with Node(NodeConfig(tmp_path / "other", bundles=(broken,))):
            pass
    garbage = tmp_path / "garbage.bundle"
    garbage.write_bytes(b"\xff\x00")
    with pytest.raises(BundleError, match=r"garbage\.bundle"):
        async with Node(NodeConfig(tmp_path / "third", bundles=(garbage,))):
            pass
