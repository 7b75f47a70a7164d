"""What `RemoteNode` says about a stock aquadoggo 0.8.1: which verbs it cannot serve there, and why
(`make interop` only: it needs the runner, P2PANDA_AQUADOGGO_RUNNER)."""

from __future__ import annotations

from pathlib import Path

import pytest

from node_adapter import NotSupported, RemoteNode
from p2panda.hash import Hash
from tests.node_adapter.aquadoggo import Aquadoggo, runner_path
from tests.node_adapter.test_adapter import ALICE, define, poll

pytestmark = pytest.mark.skipif(runner_path() is None, reason="needs P2PANDA_AQUADOGGO_RUNNER (make interop)")


async def test_aquadoggo_verbs_it_cannot_serve_say_why(tmp_path: Path) -> None:
    runner = runner_path()
    assert runner is not None
    node = Aquadoggo(runner, tmp_path)
    node.start()
    try:
        async with RemoteNode(node.url) as remote:
            capabilities = await remote.capabilities()
            assert capabilities.meta_fields == {"documentId", "viewId", "owner"}
            assert not (capabilities.has_changes or capabilities.has_operation_status or capabilities.has_log_heights)
            assert {"nextArgs", "all_schema_definition_v1"} <= capabilities.queries
            with pytest.raises(NotSupported, match="no subscriptions"):
                await remote.subscribe()
            with pytest.raises(NotSupported, match="look an operation up by id"):
                await remote.operation_status(Hash.of(b"x"))
            schema = await define(remote)
            doc = await remote.create(ALICE, schema, poll(1))
            with pytest.raises(NotSupported, match="no such column: is_edited"):
                await remote.query(schema, meta={"edited": {"eq": False}})
            # Positive control: the same query without the edited filter is served.
            assert [d.id for d in (await remote.query(schema, meta={"deleted": {"eq": False}})).documents] == [doc]
    finally:
        node.stop()
