"""The incremental materialiser (creates, updates on the tips) gives the same views as rebuilding a
document from all its operations, whatever the shape of the operation graph."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2panda import KeyPair
from p2panda.hash import Hash
from p2panda.ids import DocumentViewId
from p2panda.node import Node, NodeConfig
from p2panda.operation import Operation
from p2panda.schema import SchemaId

from .helpers import publish_operation

MESSAGE = SchemaId.parse("message_0020d4f2294b7e953e70dd476b5de39d1679ff06a4936bca3ef6fb227e83a126a767")
AUTHORS = [KeyPair.from_private_key(bytes([i]) * 32) for i in range(1, 4)]

# Each step: (author index, which existing operations to name as previous (bit mask), text).
steps = st.lists(st.tuples(st.integers(0, 2), st.integers(1, 2**20), st.text(max_size=5)), max_size=12)


async def run(flow: list[dict[str, Any]], plan: list[tuple[int, int, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with Node(NodeConfig(Path(tmp))) as node:
            for step in flow[:2]:
                await node.publish(bytes.fromhex(step["entry"]), bytes.fromhex(step["operation"]))
            root = await publish_operation(node, AUTHORS[0], Operation.create(MESSAGE, {"message": "root"}))
            ops: list[Hash] = [root]
            await node.documents(str(MESSAGE))  # load the in-memory index so publish keeps it current
            for author, mask, text in plan:
                chosen = [op for i, op in enumerate(ops) if mask >> (i % 20) & 1] or [ops[-1]]
                view = DocumentViewId(chosen)
                ops.append(
                    await publish_operation(
                        node, AUTHORS[author], Operation.update(MESSAGE, view, {"message": text}), view
                    )
                )
                stored = await node.documents(str(MESSAGE))
                rebuilt = await node.document(stored[0].id)
                assert rebuilt is not None
                assert (stored[0].view_id, stored[0].fields, stored[0].is_edited) == (
                    rebuilt.view_id,
                    rebuilt.fields,
                    rebuilt.is_edited,
                )
        async with Node(NodeConfig(Path(tmp))) as node:  # and the same from the database
            (stored_doc,) = await node.documents(str(MESSAGE))
            rebuilt = await node.document(stored_doc.id)
            assert rebuilt is not None and stored_doc.view_id == rebuilt.view_id and stored_doc.fields == rebuilt.fields


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_incremental_views_equal_full_rebuilds(vectors: dict[str, Any], plan: list[tuple[int, int, str]]) -> None:
    asyncio.run(run(vectors["node_flow"]["steps"], plan))
