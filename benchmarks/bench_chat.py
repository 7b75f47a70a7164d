"""`panda chat` end to end: the chat app (Textual, headless at 120x40) over real embedded nodes.

1. Latency: a message typed in Alice's app (composer + Enter) until it is rendered in Bob's timeline, Bob
   in another process replicating over 127.0.0.1 (both use the same machine clock; "rendered" is the
   timeline's first refresh after it has the message). p50 / p99, aim p50 < 100 ms.
2. Start-up with 10 000 messages of history: a fresh process (Python start and imports included, and
   measured again from after the imports) until the timeline shows the newest message. Aim < 2 s.
3. Memory of that process then (peak RSS).

    .venv/bin/python benchmarks/bench_chat.py [--messages 100] [--history 10000] [--data-dir DIR] [--passphrase]

With `--passphrase` every client's state is encrypted at rest (SQLCipher, `node_adapter.state_db`), as with
`panda chat --passphrase-file`: the cost of encryption is the difference to a run without it. A plain
`--data-dir` history is encrypted in place by the first start with `--passphrase` (run 1 includes that).

With `--data-dir`, the history is written there once (it takes minutes for 10 000) and reused later.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual.content import Content  # noqa: E402

from keygroups import Level  # noqa: E402
from node_adapter import Client, EmbeddedNode  # noqa: E402
from node_adapter.chat import Chat  # noqa: E402
from p2panda.identity import KeyPair  # noqa: E402
from p2panda.keystore import PASSPHRASE_ENV, create_identity, identity_path, load_identity, read_passphrase  # noqa: E402
from secret_group.schemas import KEY_PACKAGE_SCHEMA  # noqa: E402
from tui.app import ChatApp  # noqa: E402
from tui.composer import Composer  # noqa: E402
from tui.timeline import Entry, TimelineView  # noqa: E402

IMPORTED = time.time()
SIZE = (120, 40)
TEXT = re.compile(r": (bench-\d+)")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def on_rendered(app: ChatApp, seen: Callable[[str, float], None]) -> None:
    """Call `seen(text, time)` once per bench message, after the timeline refresh that first shows it."""
    view = app.query_one(TimelineView)
    show = view.show
    known: set[str] = set()

    # Same signature as `show` (it once took two arguments only: the app's call with `older=` raised in Bob's
    # refresher, his app stopped, and Alice waited for a line that never came).
    def wrapped(entries: list[Entry], notices: list[Content], older: int = 0) -> None:
        show(entries, notices, older=older)
        for entry in entries[-view.window :]:
            match = TEXT.search(entry.content.plain)
            if match and match.group(1) not in known:
                known.add(match.group(1))
                text = match.group(1)
                view.call_after_refresh(lambda text=text: seen(text, time.time()))

    view.show = wrapped  # type: ignore[method-assign]


async def bob(data_dir: Path, key_hex: str, peer: str) -> None:
    """The receiving process: prints "rendered TEXT TIME" for each message its timeline shows."""
    key_pair = KeyPair.from_private_key_hex(key_hex)
    async with (
        EmbeddedNode(data_dir, replication_port=0, peers=(peer,)) as node,
        Client(node, key_pair, passphrase=read_passphrase(None)) as client,
        Chat(client) as chat,
    ):
        app = ChatApp(chat, name="bob")
        async with app.run_test(size=SIZE) as pilot:
            on_rendered(app, lambda text, at: print(f"rendered {text} {at:.6f}", flush=True))
            print("ready", flush=True)
            while app.is_running:  # an app that stopped on an error ends this process (Alice then says so)
                await pilot.pause(1.0)
    raise SystemExit(f"bob's app stopped: {app.return_code}")


async def latency(messages: int) -> list[float]:
    root = Path(tempfile.mkdtemp(prefix="bench-chat-"))
    alice_keys, bob_keys = KeyPair.generate(), KeyPair.generate()
    async with (
        EmbeddedNode(root / "alice", replication_port=0) as node,
        Client(node, alice_keys, passphrase=read_passphrase(None)) as client,
        Chat(client) as chat,
    ):
        assert node.replication is not None
        peer = str(node.replication.address)
        args = [sys.executable, __file__, "--bob", str(root / "bob"), bob_keys.private_key().hex(), peer]
        process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        loop = asyncio.get_running_loop()
        try:
            assert (await loop.run_in_executor(None, process.stdout.readline)).startswith("ready")
            while (await node.query(KEY_PACKAGE_SCHEMA, meta={"owner": {"eq": bob_keys.public_key.hex()}})).total == 0:
                await asyncio.sleep(0.05)
            group = await client.create_group("bench")
            await group.add(bob_keys.public_key, Level.WRITE)
            app = ChatApp(chat, name="alice")
            out: list[float] = []
            async with app.run_test(size=SIZE) as pilot:
                composer = app.query_one(Composer)
                for i in range(-3, messages):  # three warm-up messages
                    text = f"bench-{i + 3}"
                    composer.focus()
                    composer.load_text(text)
                    sent = time.time()
                    await pilot.press("enter")
                    line = await loop.run_in_executor(None, process.stdout.readline)
                    if not line:
                        raise SystemExit(f"bob's process ended (exit code {process.wait()}) before showing {text}")
                    _, got, at = line.split()
                    assert got == text, line
                    if i >= 0:
                        out.append((float(at) - sent) * 1000)
                    await pilot.pause(0.05)
        finally:
            process.kill()
            process.wait()
    return out


async def fill(data_dir: Path, count: int) -> None:
    """A chat with `count` messages of history, indexed once (as after the first start); the identity is
    kept in the data directory (as `panda key new` does) so `--data-dir` can reuse it."""
    passphrase = read_passphrase(None)
    key_pair = create_identity(data_dir, passphrase=passphrase)
    async with EmbeddedNode(data_dir) as node, Client(node, key_pair, passphrase=passphrase) as client:
        group = await client.create_group("history")
        for i in range(count):
            await group.send(f"history message {i} " + "x" * 60)
        await group.send("bench-newest: bench-0")
        async with Chat(client):
            pass


async def startup(data_dir: Path) -> None:
    """The measured process: prints when the newest message is on screen, and the peak RSS then. The
    timeline is polled every 10 ms (a refresh hook would miss a first refresh that came before it)."""
    async with (
        EmbeddedNode(data_dir) as node,
        Client(
            node,
            load_identity(data_dir, read_passphrase(None)),
            passphrase=read_passphrase(None),
            sync_in_background=True,
        ) as client,  # as `panda chat`
        Chat(client) as chat,
    ):
        started = time.time()
        app = ChatApp(chat, name="alice")
        async with app.run_test(size=SIZE) as pilot:
            view = app.query_one(TimelineView)
            while not any("bench-0" in str(view.get_option_at_index(i).prompt) for i in range(view.option_count)):
                await pilot.pause(0.01)
            usable = time.time()
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"usable {IMPORTED:.6f} {started:.6f} {usable:.6f} {rss:.1f}", flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--bob":
        asyncio.run(bob(Path(sys.argv[2]), sys.argv[3], sys.argv[4]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--startup":
        asyncio.run(startup(Path(sys.argv[2])))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--history", type=int, default=10_000)
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse (or fill once) this history")
    parser.add_argument("--passphrase", action="store_true", help="encrypt the clients' state at rest")
    args = parser.parse_args()
    if args.passphrase:  # the processes this one starts read it too
        os.environ[PASSPHRASE_ENV] = "bench passphrase"
    else:
        os.environ.pop(PASSPHRASE_ENV, None)

    if args.messages:
        values = asyncio.run(latency(args.messages))
        print(f"typed in one app -> rendered in the other's timeline (two processes), {len(values)} messages, ms")
        print(f"  p50 {pct(values, 0.5):7.1f}  p99 {pct(values, 0.99):7.1f}   (aim p50 < 100)", flush=True)

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-chat-history-"))
    if not identity_path(data_dir).exists():
        start = time.perf_counter()
        asyncio.run(fill(data_dir, args.history))
        print(f"  (wrote {args.history} messages of history in {time.perf_counter() - start:.0f} s)", flush=True)
    for run in range(3):
        spawned = time.time()
        line = subprocess.run(
            [sys.executable, __file__, "--startup", str(data_dir)],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        _, imported, started, usable, rss = line.split()
        print(
            f"start-up with {args.history} messages, run {run + 1}: {float(usable) - spawned:.2f} s to a usable "
            f"screen (imports {float(imported) - spawned:.2f} s, node + client + chat "
            f"{float(started) - float(imported):.2f} s, app {float(usable) - float(started):.2f} s; aim < 2 s), "
            f"peak RSS {rss} MiB"
        )


if __name__ == "__main__":
    main()
