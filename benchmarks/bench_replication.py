"""Replication: bulk (a fresh node replicates 100 000 entries, 10 authors x 100 logs x 100 entries, with full
validation) and live mode (1 000 messages published to A, latency until node B holds them).

A is a `panda node` process; B runs in this process (an embedded node with the same key-group policy and
its replication service) so that arrival is timed on B's own change events. Reference, measured in the
same run on the same entries: publishing one by one into an embedded node (`Node.publish`, one
transaction each), and `Node.ingest` in batches of 1 000 without any network.

Run: .venv/bin/python benchmarks/bench_replication.py [--authors 10 --logs 100 --entries 100]
Aims (issue 7): 3 000 entries/s bulk; live p50 < 20 ms, p99 < 100 ms on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from node_adapter.embedded import with_key_groups
from p2panda import Hash, KeyPair
from p2panda.entry import lipmaa, sign_entry
from p2panda.entry.lipmaa import is_skiplink_required
from p2panda.ids import DocumentViewId
from p2panda.node import Node, NodeConfig
from p2panda.node.replication import Peer, Replication, ReplicationConfig
from p2panda.operation import Operation, encode_operation
from p2panda.schema import SchemaId

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.p2panda.node.process import PandaNode  # noqa: E402

VECTORS = ROOT.parent / "shared" / "vectors" / "core.json"
PUBLISH = "mutation P($e: String!, $o: String!) { publish(entry: $e, operation: $o) { logId seqNum } }"
Pair = tuple[bytes, bytes]


def schema_steps() -> tuple[list[Pair], SchemaId]:
    steps = json.loads(VECTORS.read_text())["node_flow"]["steps"]
    return [(bytes.fromhex(s["entry"]), bytes.fromhex(s["operation"])) for s in steps[:2]], SchemaId.parse(
        steps[1]["schema_id"]
    )


def history(schema: SchemaId, authors: int, logs: int, entries: int) -> list[Pair]:
    """Every log a document: created, then updated `entries - 1` times."""
    out: list[Pair] = []
    for a in range(authors):
        kp = KeyPair.from_private_key(Hash.of(b"bench author %d" % a).to_bytes()[2:])
        for log_id in range(logs):
            hashes: list[Hash] = []
            for seq in range(1, entries + 1):
                if seq == 1:
                    op = Operation.create(schema, {"message": f"{a}/{log_id}"})
                else:
                    op = Operation.update(schema, DocumentViewId([hashes[-1]]), {"message": f"{a}/{log_id}/{seq}"})
                payload = encode_operation(op)
                skiplink = hashes[lipmaa(seq) - 1] if is_skiplink_required(seq) else None
                backlink = hashes[-1] if hashes else None
                raw = sign_entry(kp, log_id=log_id, seq_num=seq, payload=payload, backlink=backlink, skiplink=skiplink)
                hashes.append(Hash.of(raw))
                out.append((raw, payload))
    return out


def embedded(data_dir: Path) -> Node:
    return Node(with_key_groups(NodeConfig(data_dir)))


async def reference(tmp: Path, setup: list[Pair], pairs: list[Pair]) -> tuple[float, float]:
    """Entries/s publishing one by one, and ingesting in batches of 1 000, into fresh embedded nodes."""
    async with embedded(tmp / "one") as node:
        await node.ingest(setup)
        start = time.perf_counter()
        for entry, operation in pairs:
            await node.publish(entry, operation)
        one = len(pairs) / (time.perf_counter() - start)
    async with embedded(tmp / "batch") as node:
        await node.ingest(setup)
        start = time.perf_counter()
        for i in range(0, len(pairs), 1000):
            await node.ingest(pairs[i : i + 1000])
        batched = len(pairs) / (time.perf_counter() - start)
    return one, batched


async def fill(data_dir: Path, setup: list[Pair], pairs: list[Pair]) -> None:
    async with embedded(data_dir) as node:
        outcomes = await node.ingest(setup)
        for i in range(0, len(pairs), 1000):
            outcomes += await node.ingest(pairs[i : i + 1000])
        refused = [o for o in outcomes if isinstance(o, Exception)]
        assert not refused, refused[:3]


async def bulk(node: Node, source: PandaNode, total: int) -> tuple[Replication, float]:
    """B (fresh) dials A; seconds until B has stored `total` entries. B keeps replicating afterwards."""
    watch = node.watch_entries()
    replication = Replication(node, config(source))
    start = time.perf_counter()
    await replication.start()
    for _ in range(total):
        await asyncio.wait_for(watch.get(), timeout=120)
    seconds = time.perf_counter() - start
    node.unwatch_entries(watch)
    return replication, seconds


def config(source: PandaNode) -> ReplicationConfig:
    return ReplicationConfig(KeyPair.generate(), "127.0.0.1", 0, peers=(Peer.parse(source.address),))


async def live(source: PandaNode, node: Node, schema: SchemaId, count: int, rate: float) -> list[float]:
    """Latencies (s) of `count` messages published to A over HTTP at `rate`/s until B's change event."""
    kp = KeyPair.generate()
    messages = []
    for i in range(count):
        payload = encode_operation(Operation.create(schema, {"message": f"live {i}"}))
        raw = sign_entry(kp, log_id=i, seq_num=1, payload=payload, backlink=None, skiplink=None)
        messages.append((raw, payload))
    sent: dict[str, float] = {}
    latencies: list[float] = []
    async with node.subscribe(frozenset({str(schema)})) as changes, aiohttp.ClientSession() as http:

        async def receive() -> None:
            async for change in changes:
                if change.public_key == kp.public_key:
                    latencies.append(time.perf_counter() - sent[change.operation_id.hex()])
                    if len(latencies) == count:
                        return

        receiving = asyncio.ensure_future(receive())
        start = time.perf_counter()
        for i, (raw, payload) in enumerate(messages):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            sent[Hash.of(raw).hex()] = time.perf_counter()
            body = {"query": PUBLISH, "variables": {"e": raw.hex(), "o": payload.hex()}}
            async with http.post(source.url, json=body) as response:
                result = await response.json()
                assert "errors" not in result, result
        await asyncio.wait_for(receiving, timeout=60)
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--authors", type=int, default=10)
    parser.add_argument("--logs", type=int, default=100)
    parser.add_argument("--entries", type=int, default=100)
    parser.add_argument("--reference", type=int, default=5000, help="entries for the embedded reference")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="live messages per second")
    args = parser.parse_args()
    setup, schema = schema_steps()
    start = time.perf_counter()
    pairs = history(schema, args.authors, args.logs, args.entries)
    total = len(pairs) + len(setup)
    print(f"signed {len(pairs):,} entries in {time.perf_counter() - start:.1f} s")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        one, batched = await reference(tmp / "ref", setup, pairs[: args.reference])
        print(f"reference, embedded publish one by one   {one:10,.0f} entries/s ({args.reference:,} entries)")
        print(f"reference, embedded ingest, batches 1000 {batched:10,.0f} entries/s")
        await fill(tmp / "a", setup, pairs)
        source = PandaNode(tmp / "a")
        source.start()
        node = embedded(tmp / "b")
        await node.start()
        replication = None
        try:
            replication, seconds = await bulk(node, source, total)
            print(
                f"bulk replication A -> fresh B            {total / seconds:10,.0f} entries/s "
                f"({total:,} entries in {seconds:.1f} s; aim 3 000/s)"
            )
            latencies = await live(source, node, schema, args.messages, args.rate)
            p50, p99 = percentile(latencies, 50) * 1e3, percentile(latencies, 99) * 1e3
            print(
                f"live A -> B, {args.messages} messages at {args.rate:.0f}/s   p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  "
                f"max {max(latencies) * 1e3:.1f} ms (aims 20 / 100 ms; from A's publish over HTTP to B's event)"
            )
        finally:
            if replication is not None:
                await replication.stop()
            await node.stop()
            source.kill()


if __name__ == "__main__":
    asyncio.run(main())
