"""The adapter suite runs once per node kind: embedded in this process, and remote against a
`panda node` process on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from node_adapter import EmbeddedNode, Node, RemoteNode
from tests.p2panda.node.process import PandaNode


@pytest.fixture(params=["embedded", "remote"])
async def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Node]:
    if request.param == "embedded":
        async with EmbeddedNode(tmp_path / "embedded") as node:
            yield node
        return
    process = PandaNode(tmp_path / "remote")
    process.start()
    try:
        async with RemoteNode(process.url) as remote:
            yield remote
    finally:
        process.kill()
