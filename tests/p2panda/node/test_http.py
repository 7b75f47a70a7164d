"""`panda node` as a real process on 127.0.0.1: node_flow over HTTP, kill -9 and restart, clean shutdown."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .process import ROOT, PandaNode

PUBLISH = "mutation P($entry: String!, $operation: String!) { publish(entry: $entry, operation: $operation) { logId seqNum backlink skiplink } }"
NEXT_ARGS = "query N($pk: PublicKey!, $view: DocumentViewId) { nextArgs(publicKey: $pk, viewId: $view) { logId seqNum backlink skiplink } }"


@pytest.fixture
def panda_node(tmp_path: Path) -> Iterator[PandaNode]:
    node = PandaNode(tmp_path / "node")
    node.start()
    yield node
    if node.proc is not None:
        node.kill()


async def gql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json={"query": query, "variables": variables or {}}) as r,
    ):
        assert r.status == 200
        body: dict[str, Any] = await r.json()
        return body


async def test_node_flow_over_http_survives_kill_9(panda_node: PandaNode, vectors: dict[str, Any]) -> None:
    flow = vectors["node_flow"]
    steps = flow["steps"]
    owner = flow["graphql_after_step_3"]["response"]["data"]["doc"]["meta"]["owner"]
    fresh = await gql(panda_node.url, NEXT_ARGS, {"pk": owner})
    assert fresh == {"data": {"nextArgs": {"logId": "0", "seqNum": "1", "backlink": None, "skiplink": None}}}
    first = await gql(panda_node.url, PUBLISH, {"entry": steps[0]["entry"], "operation": steps[0]["operation"]})
    assert "errors" not in first
    after = await gql(panda_node.url, NEXT_ARGS, {"pk": owner, "view": steps[0]["entry_hash"]})
    assert after == {"data": {"nextArgs": flow["next_args_after_step_1"]}}
    for step in steps[1:3]:
        result = await gql(panda_node.url, PUBLISH, {"entry": step["entry"], "operation": step["operation"]})
        assert "errors" not in result, result
    query = flow["graphql_after_step_3"]["query"]
    assert await gql(panda_node.url, query) == flow["graphql_after_step_3"]["response"]
    result = await gql(panda_node.url, PUBLISH, {"entry": steps[3]["entry"], "operation": steps[3]["operation"]})
    assert result["data"]["publish"]["seqNum"] == "3"

    # Acknowledged data survives kill -9 and a restart.
    assert panda_node.kill(signal.SIGKILL) == -signal.SIGKILL
    panda_node.start()
    pinned = query.replace('(id: "', '(viewId: "')
    assert await gql(panda_node.url, pinned) == flow["graphql_after_step_3"]["response"]
    view = f'{{ doc: {steps[1]["schema_id"]}(id: "{steps[2]["entry_hash"]}") {{ meta {{ viewId }} fields {{ message }} }} }}'
    latest = await gql(panda_node.url, view)
    assert latest["data"]["doc"] == {"meta": {"viewId": steps[3]["entry_hash"]}, "fields": {"message": "Hello again"}}


async def test_clean_shutdown_on_sigterm(panda_node: PandaNode) -> None:
    assert panda_node.kill(signal.SIGTERM) == 0


async def test_http_errors(panda_node: PandaNode) -> None:
    bad = await gql(panda_node.url, PUBLISH, {"entry": "zz", "operation": "00"})
    assert bad["errors"][0]["message"] == 'Invalid value for argument "entry", expected type "EncodedEntry"'
    async with aiohttp.ClientSession() as session:
        async with session.post(panda_node.url, data=b"not json", headers={"Content-Type": "application/json"}) as r:
            assert r.status == 400
            assert (await r.json())["errors"][0]["message"].startswith(
                "malformed GraphQL request: the body is not JSON"
            )
        async with session.options(panda_node.url) as r:
            assert "Access-Control-Allow-Origin" not in r.headers  # no CORS unless origins are configured


def test_node_config_file(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text('http_port = 0\nhttp_host = "127.0.0.1"\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "p2panda.cli", "node", "--data-dir", str(tmp_path), "--config", str(config)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    try:
        for _ in range(50):
            line = proc.stderr.readline()
            if "node ready" in line:
                break
        else:
            pytest.fail("node did not start from its config file")
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("nonsense = 1\n")
    out = subprocess.run(
        [sys.executable, "-m", "p2panda.cli", "node", "--data-dir", str(tmp_path), "--config", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and "unknown keys" in out.stderr
