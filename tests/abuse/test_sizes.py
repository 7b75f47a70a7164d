"""One size limit for operations (P0 in p2panda/node/publish.py), carried by replication: between two real
`panda node` processes, an operation of almost the limit (four box-stream frames) replicates; one byte
more is refused at publish, naming its size, and stores nothing."""

from __future__ import annotations

import asyncio
import time

import pytest

from node_adapter import PublishRefused, QueryRefused, RemoteNode
from node_adapter.types import Page
from p2panda import KeyPair
from p2panda.node.publish import MAX_OPERATION_SIZE
from p2panda.node.transport import MAX_FRAME
from p2panda.operation import Operation, encode_operation
from p2panda.schema import FieldType, Schema
from tests.abuse.conftest import StartNode

ALICE = KeyPair.from_private_key(bytes([9]) * 32)


def _body_for(schema: Schema, size: int, fill: str) -> str:
    """A body whose create operation is exactly `size` bytes."""
    overhead = len(encode_operation(Operation.create(schema.id, {"body": ""})))
    body = fill * (size - overhead)
    # The text's CBOR header grows with its length (1, 2, 3 or 5 bytes).
    body = body[: len(body) - (len(encode_operation(Operation.create(schema.id, {"body": body}))) - size)]
    assert len(encode_operation(Operation.create(schema.id, {"body": body}))) == size
    return body


async def _first(node: RemoteNode, schema: Schema) -> Page | None:
    """The first page of the schema's documents; None while the node does not know the schema itself yet
    (it replicates separately: on a loaded machine the query could come first)."""
    try:
        return await node.query(schema, first=1)
    except QueryRefused as exc:
        if f"Unknown type '{schema.id}" not in str(exc):
            raise
        return None


async def test_an_operation_of_the_size_limit_replicates_and_a_larger_one_is_refused(start_node: StartNode) -> None:
    b = start_node(name="b")
    a = start_node("", "--peer", b.address, name="a")
    async with RemoteNode(a.url) as at_a, RemoteNode(b.url) as at_b:
        schema = await at_a.define_schema(ALICE, "page", "a page", {"body": FieldType.parse("str")})
        body = _body_for(schema, MAX_OPERATION_SIZE, "x")
        assert len(body) > 4 * MAX_FRAME
        await at_a.create(ALICE, schema, {"body": body})
        deadline = time.monotonic() + 30
        while (page := await _first(at_b, schema)) is None or page.total == 0:
            assert time.monotonic() < deadline, "the largest operation did not reach the other node"
            await asyncio.sleep(0.2)
        fields = page.documents[0].fields
        assert fields is not None and fields["body"] == body

        heights = await at_a.log_heights(ALICE.public_key)
        larger = _body_for(schema, MAX_OPERATION_SIZE + 1, "y")
        with pytest.raises(PublishRefused, match=f"operation is {MAX_OPERATION_SIZE + 1} bytes, at most 300000 are"):
            await at_a.create(ALICE, schema, {"body": larger})
        assert await at_a.log_heights(ALICE.public_key) == heights
