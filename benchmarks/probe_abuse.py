"""The abuse probes of issue 16, re-run against a real `panda node` with its default settings: the figures
for the report (RSS, latency of a simple query, log growth). Run as root (the fd probe lowers the node's
file limit with `prlimit`): `PYTHONPATH=. .venv/bin/python benchmarks/probe_abuse.py`.

1. the 213 KB query fanning out over nested relation lists, 8 at once;
2. the parse cache flood: a 1 MB query, then 300 distinct valid 60 KB queries;
3. 500 WebSockets with 10 subscriptions each that never read (as user 65534), while documents are published;
4. file descriptors exhausted (node under `prlimit --nofile=96`, 300 connections held for 15 s): log growth;
5. non-object `variables`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node_adapter import RemoteNode
from p2panda import KeyPair
from p2panda.schema import FieldType
from tests.abuse.probes import rss_bytes
from tests.abuse.test_connections import _non_reading_subscriber, simple_query
from tests.abuse.test_graphql_cost import _crates, fan_out
from tests.p2panda.node.process import PandaNode

MB = 1024 * 1024
ABUSER = 65534
ALICE = KeyPair.from_private_key(bytes([5]) * 32)


def start(base: Path, name: str, prefix: list[str] | None = None) -> PandaNode:
    node = PandaNode(base / name, prefix=prefix)
    node.start()
    return node


def port(node: PandaNode) -> int:
    return int(node.url.rsplit(":", 1)[1].split("/")[0])


async def post(url: str, body: Any) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, {"errors": [{"message": text.strip()}]}


async def polite_during(url: str, abuse: asyncio.Future[Any]) -> list[float]:
    latencies = []
    while not abuse.done():
        latencies.append(await simple_query(url))
        await asyncio.sleep(0.05)
    return latencies


def rss(node: PandaNode) -> float:
    assert node.proc is not None
    return rss_bytes(node.proc.pid) / MB


def report(name: str, figures: dict[str, Any]) -> None:
    print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in figures.items()), flush=True)


async def fan_out_probe(base: Path) -> None:
    node = start(base, "fanout")
    crate = await _crates(node)
    probe = fan_out(crate, 800)
    before = rss(node)
    started = time.monotonic()
    abuse: asyncio.Future[list[tuple[int, dict[str, Any]]]] = asyncio.gather(
        *(post(node.url, {"query": probe}) for _ in range(8))
    )
    latencies = await polite_during(node.url, abuse)
    answers = await abuse
    report(
        "1 fan-out 213 KB x8",
        {
            "bytes": len(probe),
            "answers": sorted({f"{s} {a['errors'][0]['message'][:60]}" for s, a in answers}),
            "all answered in s": round(time.monotonic() - started, 3),
            "polite max s": round(max(latencies, default=0), 3),
            "rss MB": f"{before:.0f} -> {rss(node):.0f}",
        },
    )
    node.kill()


async def cache_probe(base: Path) -> None:
    node = start(base, "cache")
    before = rss(node)
    status, answer = await post(node.url, {"query": "{ __typename " + "#" * MB + " }"})
    first = f"{status} {answer.get('errors', [{}])[0].get('message', '')[:60]}" if answer else str(status)
    started = time.monotonic()
    throttled = 0
    for n in range(300):
        names = ", ".join(f'"n{n}x{i}"' for i in range(5000))
        query = f"{{ all_schema_definition_v1(filter: {{ name: {{ in: [{names}] }} }}) {{ totalCount }} }}"
        while (answered := await post(node.url, {"query": query}))[0] == 429:  # F3: this client's share
            throttled += 1
            await asyncio.sleep(1)
        assert answered[0] == 200 and "errors" not in answered[1], answered
    report(
        "2 parse cache flood",
        {
            "1 MB query": first,
            "300 distinct queries of": f"{len(query)} bytes",
            "in s": round(time.monotonic() - started, 1),
            "429 (F3) answers": throttled,
            "polite s": round(await simple_query(node.url), 3),
            "rss MB": f"{before:.0f} -> {rss(node):.0f}",
        },
    )
    node.kill()


async def websocket_probe(base: Path) -> None:
    node = start(base, "websockets")
    before = rss(node)
    refused = 0
    writers = []
    for _ in range(int(os.environ.get("PROBE_WEBSOCKETS", "500"))):  # 0: the publishing alone, a control
        os.seteuid(ABUSER)  # the abuser is another local user (F1): its sockets are its own
        try:
            writers.append(await _non_reading_subscriber(port(node), subscriptions=10))
        except (AssertionError, ConnectionError, asyncio.IncompleteReadError):
            refused += 1
        finally:
            os.seteuid(0)
    latencies = []
    async with RemoteNode(node.url) as remote:
        schema = await remote.define_schema(ALICE, "note", "a note", {"title": FieldType.parse("str")})
        peak = rss(node)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            for _ in range(10):
                await remote.create(ALICE, schema, {"title": "x" * 1000})
            latencies.append(await simple_query(node.url))
            peak = max(peak, rss(node))
    dropped = sum("dropped a WebSocket client" in line for line in node.log)
    for writer in writers:
        writer.close()
    await asyncio.sleep(1)
    report(
        "3 500 WebSockets x 10 subscriptions, never read",
        {
            "accepted": len(writers),
            "refused": refused,
            "dropped as slow": dropped,
            "documents published": 10 * len(latencies),
            "polite max s": round(max(latencies), 3),
            "rss MB": f"{before:.0f} -> peak {peak:.0f} -> {rss(node):.0f}",
        },
    )
    node.kill()


async def fd_probe(base: Path) -> None:
    node = start(base, "fds", prefix=["prlimit", "--nofile=96", "--"])
    log_before = sum(len(line) for line in node.log)
    held = []
    for _ in range(300):
        held.append(await asyncio.open_connection("127.0.0.1", port(node)))
    await asyncio.sleep(15)
    grown = sum(len(line) for line in node.log) - log_before
    for _, writer in held:
        writer.close()
    await asyncio.sleep(2)
    report(
        "4 fds exhausted 15 s",
        {
            "log grew bytes": grown,
            "EMFILE lines": sum("Too many open files" in line for line in node.log),
            "polite after s": round(await simple_query(node.url), 3),
        },
    )
    node.kill()


async def variables_probe(base: Path) -> None:
    node = start(base, "variables")
    answers = [await post(node.url, {"query": "{ __typename }", "variables": v}) for v in ([1], "x", 3)]
    report("5 non-object variables", {"answers": [f"{s} {a['errors'][0]['message']}" for s, a in answers]})
    node.kill()


async def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        base = Path(directory)
        for probe in (fan_out_probe, cache_probe, websocket_probe, fd_probe, variables_probe):
            if len(sys.argv) > 1 and probe.__name__ not in sys.argv[1:]:
                continue
            await probe(base)


if __name__ == "__main__":
    print(json.dumps({"python": sys.version.split()[0]}))
    asyncio.run(main())
