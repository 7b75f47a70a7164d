"""Node throughput: publishes per second in-process and over HTTP (SQLite file; PostgreSQL when a URL is
given), first-page latency of `all_S` over N documents, and the idle node's resident memory.

Run: .venv/bin/python benchmarks/bench_node.py [--documents 2000] [--postgres postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp

from p2panda import Hash, KeyPair
from p2panda.entry import sign_entry
from p2panda.node import Node, NodeConfig
from p2panda.node.api import GraphQLApi
from p2panda.operation import Operation, encode_operation
from p2panda.schema import SchemaId

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT.parent / "shared" / "vectors" / "core.json"
PUBLISH = "mutation P($e: String!, $o: String!) { publish(entry: $e, operation: $o) { logId seqNum } }"


def node_flow_schema() -> tuple[list[tuple[bytes, bytes]], SchemaId]:
    import json

    flow = json.loads(VECTORS.read_text())["node_flow"]
    steps = [(bytes.fromhex(s["entry"]), bytes.fromhex(s["operation"])) for s in flow["steps"][:2]]
    return steps, SchemaId.parse(flow["steps"][1]["schema_id"])


def creates(schema: SchemaId, count: int) -> list[tuple[bytes, bytes]]:
    """`count` CREATEs by distinct authors (one new log each), signed up front."""
    out = []
    for i in range(count):
        payload = encode_operation(Operation.create(schema, {"message": f"message {i}"}))
        kp = KeyPair.from_private_key(Hash.of(i.to_bytes(4, "big")).to_bytes()[2:])
        out.append((sign_entry(kp, log_id=0, seq_num=1, payload=payload, backlink=None, skiplink=None), payload))
    return out


async def in_process(url: str | None, data_dir: Path, count: int) -> tuple[float, float, float]:
    """Publish rate, then first-page latency on a restarted node: cold (first query) and warm."""
    setup, schema = node_flow_schema()
    entries = creates(schema, count)
    async with Node(NodeConfig(data_dir, url)) as node:
        for entry, op in setup:
            await node.publish(entry, op)
        start = time.perf_counter()
        for entry, op in entries:
            await node.publish(entry, op)
        rate = count / (time.perf_counter() - start)
    query = (
        f'{{ all_{schema}(first: 25, orderBy: message, orderDirection: DESC, filter: {{message: {{contains: "1"}}}})'
        " { totalCount documents { meta { documentId } fields { message } } } }"
    )
    async with Node(NodeConfig(data_dir, url)) as node:
        api = GraphQLApi(node)
        start = time.perf_counter()
        await api.execute(query)
        cold = time.perf_counter() - start
        warm = []
        for _ in range(5):
            start = time.perf_counter()
            result = await api.execute(query)
            warm.append(time.perf_counter() - start)
        assert result["data"][f"all_{schema}"]["totalCount"] == sum("1" in f"message {i}" for i in range(count))
    return rate, cold, min(warm)


async def over_http(data_dir: Path, count: int, clients: int) -> tuple[float, float, float]:
    """Sequential publish rate, rate with `clients` concurrent clients, idle RSS (MiB)."""
    setup, schema = node_flow_schema()
    entries = creates(schema, count)
    proc = subprocess.Popen(
        [sys.executable, "-m", "p2panda.cli", "node", "--data-dir", str(data_dir), "--http-port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    url = ""
    while not url:
        match = re.search(r"node ready: (\S+)", proc.stderr.readline())
        url = match.group(1) if match else ""
    rss_kib = 0.0
    try:
        await asyncio.sleep(1)
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss_kib = float(line.split()[1])
        async with aiohttp.ClientSession() as session:

            async def publish(entry: bytes, op: bytes) -> None:
                body = {"query": PUBLISH, "variables": {"e": entry.hex(), "o": op.hex()}}
                async with session.post(url, json=body) as response:
                    result = await response.json()
                    assert "errors" not in result, result

            for entry, op in setup:
                await publish(entry, op)
            half = count // 2
            start = time.perf_counter()
            for entry, op in entries[:half]:
                await publish(entry, op)
            rate = half / (time.perf_counter() - start)

            async def client(share: list[tuple[bytes, bytes]]) -> None:
                for entry, op in share:
                    await publish(entry, op)

            rest = entries[half:]
            start = time.perf_counter()
            await asyncio.gather(*(client(rest[i::clients]) for i in range(clients)))
            concurrent_rate = len(rest) / (time.perf_counter() - start)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    return rate, concurrent_rate, rss_kib / 1024


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=10000)
    parser.add_argument(
        "--postgres", default="auto", help="a postgresql:// URL, 'auto' (start one when initdb exists) or 'none'"
    )
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    n = args.documents
    with tempfile.TemporaryDirectory() as tmp:
        rate, cold, warm = await in_process(None, Path(tmp) / "a", n)
        print(f"in-process publish (SQLite file)          {rate:10,.0f} /s   (aim 2,000)")
        print(f"all_S first page over {n} docs, cold    {cold * 1e3:10.1f} ms  (first query after start)")
        print(f"all_S first page over {n} docs, warm    {warm * 1e3:10.1f} ms  (aim < 50 ms at 10 000)")
        with postgres(args.postgres) as url:
            if url is None:
                print("PostgreSQL                                 not available (pass --postgres URL)")
            else:
                pg_rate, pg_cold, pg_warm = await in_process(url, Path(tmp) / "p", n)
                print(f"in-process publish (PostgreSQL)           {pg_rate:10,.0f} /s")
                print(f"all_S first page (PostgreSQL), cold/warm  {pg_cold * 1e3:7.1f} / {pg_warm * 1e3:.1f} ms")
        http_rate, concurrent, rss = await over_http(Path(tmp) / "h", n, args.clients)
        print(f"HTTP publish (panda node, SQLite), 1 client {http_rate:8,.0f} /s   (aim 500)")
        print(f"HTTP publish, {args.clients} concurrent clients       {concurrent:8,.0f} /s")
        print(f"idle panda node RSS                       {rss:10.1f} MiB (aim < 80)")


@contextlib.contextmanager
def postgres(choice: str) -> Iterator[str | None]:
    if choice == "none":
        yield None
    elif choice != "auto":
        yield choice
    else:
        sys.path.insert(0, str(ROOT))
        from tests.p2panda.node.postgres import PostgresServer

        try:
            server = PostgresServer()
        except (FileNotFoundError, OSError):
            yield None
            return
        try:
            yield server.new_database()
        finally:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
