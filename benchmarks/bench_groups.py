"""Secret groups end to end: a chat message from one process until it is decrypted in another.

Two processes on 127.0.0.1, each an embedded node with its Client, replicating over the real transport:
this one (Alice) sends, the echo process (Bob) prints the moment each message is decrypted (both use the
same machine clock). Reported: p50 / p99 of send -> decrypted at Bob, in both modes; then the cost per
message inside the Client (encrypt + publish locally, and open + store on the receiving side) without
the network; and the MLS-level figures for 100 and 1 000 members against native OpenMLS, from
`bench_mls.py` in the same run (`--mls-sizes ''` to skip them).

    .venv/bin/python benchmarks/bench_groups.py [--messages 300] [--mls-sizes 100,1000]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from keygroups import Level  # noqa: E402
from node_adapter import Client, EmbeddedNode  # noqa: E402
from p2panda.identity import KeyPair  # noqa: E402
from secret_group.schemas import KEY_PACKAGE_SCHEMA  # noqa: E402

ECHO = """
import asyncio, sys, time
from pathlib import Path
from node_adapter import Client, EmbeddedNode
from p2panda.identity import KeyPair

async def main():
    kp = KeyPair.from_private_key_hex(sys.argv[2])
    async with EmbeddedNode(Path(sys.argv[1]), replication_port=0, peers=(sys.argv[3],)) as node, Client(node, kp) as c:
        print("ready", flush=True)
        seen = set()
        events = c.events()
        async for event in events:
            if event.kind != "message" or event.document_id in seen:
                continue
            seen.add(event.document_id)
            group = await c.group(event.group_id)
            doc = c.document_of(group.id, event.document_id)
            if doc is not None and doc.fields is not None:
                print(f"got {doc.fields['text']} {time.time():.6f}", flush=True)

asyncio.run(main())
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def end_to_end(messages: int, history: bool) -> tuple[float, float]:
    root = Path(tempfile.mkdtemp(prefix="bench-groups-"))
    alice, bob = KeyPair.generate(), KeyPair.generate()
    async with EmbeddedNode(root / "alice", replication_port=0) as node, Client(node, alice) as client:
        assert node.replication is not None
        echo = subprocess.Popen(
            [
                sys.executable,
                "-c",
                ECHO,
                str(root / "bob"),
                bob.private_key().hex(),
                str(node.replication.address),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert echo.stdout is not None
        try:
            assert echo.stdout.readline().startswith("ready")
            while (await node.query(KEY_PACKAGE_SCHEMA, meta={"owner": {"eq": bob.public_key.hex()}})).total == 0:
                await asyncio.sleep(0.05)
            group = await client.create_group("bench", history=history)
            await group.add(bob.public_key, Level.WRITE)
            loop = asyncio.get_running_loop()
            sent: dict[str, float] = {}
            latencies: list[float] = []
            await group.send("warm-up")
            line = await loop.run_in_executor(None, echo.stdout.readline)
            assert line.startswith("got warm-up"), line
            for i in range(messages):
                text = f"m{i}"
                sent[text] = time.time()
                await group.send(text)
                line = await loop.run_in_executor(None, echo.stdout.readline)
                _, got, at = line.split()
                latencies.append((float(at) - sent[got]) * 1000)
                await asyncio.sleep(0.01)
        finally:
            echo.kill()
            echo.wait()
    return pct(latencies, 0.5), pct(latencies, 0.99)


async def in_client(messages: int, history: bool) -> tuple[float, float]:
    """ms per message: Alice's send (encrypt, sign, one state transaction, local publish), then Bob's
    catch-up after the fact (sweep the node, open, one state transaction per envelope), both clients on
    one in-process node."""
    root = Path(tempfile.mkdtemp(prefix="bench-groups-local-"))
    alice, bob = KeyPair.generate(), KeyPair.generate()
    bob_state = root / "bob.sqlite3"
    async with EmbeddedNode(root / "node") as node:
        async with Client(node, bob, state_path=bob_state):
            pass  # publishes Bob's key packages
        async with Client(node, alice) as a:
            group = await a.create_group("bench", history=history)
            await group.add(bob.public_key, Level.WRITE)
            start = time.perf_counter()
            for i in range(messages):
                await group.send(f"m{i} " + "x" * 1000)
            send_ms = (time.perf_counter() - start) * 1000 / messages
        start = time.perf_counter()
        async with Client(node, bob, state_path=bob_state) as b:  # start() sweeps and drains
            receive_ms = (time.perf_counter() - start) * 1000 / messages
            assert len(await (await b.groups())[0].messages()) == messages
    return send_ms, receive_ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--mls-sizes", default="100,1000")
    args = parser.parse_args()
    print("send -> decrypted in another process (two embedded nodes on 127.0.0.1), ms")
    for history in (False, True):
        p50, p99 = asyncio.run(end_to_end(args.messages, history))
        print(f"  {'history' if history else 'ratchet':8s} p50 {p50:7.2f}  p99 {p99:7.2f}   (aim p50 < 30, p99 < 100)")
    print("inside the Client, 1 KiB messages, ms per message (one node, no network; receive = catch-up)")
    for history in (False, True):
        send_ms, receive_ms = asyncio.run(in_client(min(args.messages, 300), history))
        print(f"  {'history' if history else 'ratchet':8s} send {send_ms:6.2f}  receive {receive_ms:6.2f}")
    if args.mls_sizes:
        print("MLS level, binding vs native OpenMLS (bench_mls.py, same run):", flush=True)
        subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "bench_mls.py"), "--sizes", args.mls_sizes, "--runs", "3"],
            cwd=ROOT,
            check=True,
        )


if __name__ == "__main__":
    main()
