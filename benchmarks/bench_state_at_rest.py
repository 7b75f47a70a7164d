"""The cost of encrypting the client's state at rest (SQLCipher, `node_adapter.state_db`), the same work
with and without a passphrase, in one process on an embedded node:

1. Sending: `Group.send` (seal, sign, store in the client's state, publish to the node), p50 / p99, while
   writing a history of N messages, and the chat's index of them (`Chat.start` on a fresh chat file).
2. Start-up on that history: the client's and the chat's start (key derivation, opening the state, the
   MLS state loaded), median of 3, and a full-text search over it.

    .venv/bin/python benchmarks/bench_state_at_rest.py [--history 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from node_adapter import Client, EmbeddedNode  # noqa: E402
from node_adapter.chat import Chat  # noqa: E402
from p2panda.identity import KeyPair  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(history: int, passphrase: bytes | None) -> None:
    label = "with a passphrase (SQLCipher)" if passphrase else "without a passphrase (plain SQLite)"
    root = Path(tempfile.mkdtemp(prefix="bench-at-rest-"))
    key_pair = KeyPair.generate()
    sends: list[float] = []
    async with EmbeddedNode(root, replication_port=0) as node:
        async with Client(node, key_pair, passphrase=passphrase) as client:
            group = await client.create_group("bench")
            for i in range(history):
                start = time.perf_counter()
                await group.send(f"history message {i} " + "x" * 60)
                sends.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            async with Chat(client):
                indexed = time.perf_counter() - start
        starts: list[float] = []
        for _ in range(3):
            start = time.perf_counter()
            async with Client(node, key_pair, passphrase=passphrase) as client, Chat(client) as chat:
                starts.append(time.perf_counter() - start)
                start = time.perf_counter()
                hits = chat.search("message 1999")
                searched = (time.perf_counter() - start) * 1000
                assert hits or history < 2000
    print(f"{label}:")
    print(f"  send p50 {pct(sends, 0.5):6.1f} ms  p99 {pct(sends, 0.99):6.1f} ms  ({history} messages)")
    print(f"  first chat start (indexes {history} messages) {indexed:.2f} s")
    print(
        f"  start-up (client + chat) median {statistics.median(starts):.2f} s  (runs {', '.join(f'{s:.2f}' for s in starts)})"
    )
    print(f"  search {searched:.1f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--history", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(run(args.history, None))
    asyncio.run(run(args.history, b"bench passphrase"))


if __name__ == "__main__":
    main()
