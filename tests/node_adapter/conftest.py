"""The adapter suite runs once per node kind: embedded in this process, remote against a `panda node`
process on 127.0.0.1, and, for `make interop` only (P2PANDA_AQUADOGGO_RUNNER set), remote against a
stock aquadoggo 0.8.1 on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from keygroups.schemas import BUNDLE_PATH
from node_adapter import EmbeddedNode, Node, RemoteNode
from p2panda.node.bundle import read_bundle
from tests.node_adapter.aquadoggo import Aquadoggo, runner_path
from tests.p2panda.node.process import PandaNode

KINDS = ["embedded", "remote", *(["aquadoggo"] if runner_path() else [])]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "not_on_plain_node(why): needs what only our node offers (write policy, subscriptions); skipped "
        "against a stock aquadoggo with `why`",
    )


@pytest.fixture(params=KINDS)
async def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Node]:
    marker = request.node.get_closest_marker("not_on_plain_node")
    if request.param == "aquadoggo" and marker is not None:
        pytest.skip(f"impossible on a plain aquadoggo 0.8: {marker.args[0]}")
    if request.param == "embedded":
        async with EmbeddedNode(tmp_path / "embedded") as node:
            yield node
        return
    if request.param == "aquadoggo":
        runner = runner_path()
        assert runner is not None
        aquadoggo = Aquadoggo(runner, tmp_path / "aquadoggo")
        aquadoggo.start()
        try:
            async with RemoteNode(aquadoggo.url) as remote:
                # Our nodes load the key-group schemas from their bundle at start; a stock node gets
                # the same entries published.
                for entry, operation in read_bundle(BUNDLE_PATH):
                    await remote.publish(entry, operation)
                yield remote
        finally:
            aquadoggo.stop()
        return
    process = PandaNode(tmp_path / "remote")
    process.start()
    try:
        async with RemoteNode(process.url) as remote:
            yield remote
    finally:
        process.kill()
