"""Convergence through crashes: three `panda node` processes in a ring (A dials B, B dials C, C dials A) on
fixed ports, random creates and updates published to all three while nodes are killed with SIGKILL and
restarted; after quiescence all three hold the same entries and the same current document views."""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from node_adapter import QueryRefused, RemoteNode
from node_adapter.embedded import with_key_groups
from p2panda import KeyPair
from p2panda.ids import DocumentId
from p2panda.keystore import load_or_create_node_key
from p2panda.node import Node, NodeConfig
from p2panda.node import tables as t
from tests.p2panda.node.postgres import free_port
from tests.p2panda.node.process import PandaNode
from tests.p2panda.node.test_replication import SCHEMA, schema_missing

CHAOS_SECONDS = 12.0


def state(conn: Connection) -> tuple[str, str, int]:
    """(fingerprint of the entries, fingerprint of the current views, number of entries)."""
    entries = sorted(r.hash for r in conn.execute(select(t.entries.c.hash)))
    views = sorted(
        repr(tuple(r))
        for r in conn.execute(
            select(t.documents.c.id, t.documents.c.view_id, t.documents.c.is_deleted, t.document_views.c.fields).join(
                t.document_views, t.document_views.c.view_id == t.documents.c.view_id
            )
        )
    )
    return (
        hashlib.sha256("\n".join(entries).encode()).hexdigest(),
        hashlib.sha256("\n".join(views).encode()).hexdigest(),
        len(entries),
    )


async def stored_state(data_dir: Path) -> tuple[str, str, int]:
    async with Node(with_key_groups(NodeConfig(data_dir))) as node:
        return await node.db.read(state)


async def test_random_publishes_with_kill_9_converge(tmp_path: Path, vectors: dict[str, Any]) -> None:
    rng = random.Random(7)
    ports = [free_port() for _ in range(3)]
    # Node keys made before the first start (as `panda node --print-address` does), so each node can be
    # given the next one's peer address.
    keys = [load_or_create_node_key(tmp_path / name).public_key.hex() for name in "abc"]
    nodes = [
        PandaNode(
            tmp_path / name,
            extra=["--peer", f"{keys[(i + 1) % 3]}@127.0.0.1:{ports[(i + 1) % 3]}"],
            replication_port=ports[i],
        )
        for i, name in enumerate("abc")
    ]
    authors = [KeyPair.generate() for _ in nodes]  # author i writes through node i only, as a client would
    documents: list[DocumentId] = []
    published = kills = 0
    try:
        for process in nodes:
            process.start()
        async with RemoteNode(nodes[0].url) as a:
            for step in vectors["node_flow"]["steps"][:2]:
                await a.publish(bytes.fromhex(step["entry"]), bytes.fromhex(step["operation"]))
        await until_schema_everywhere(nodes)

        down: dict[int, float] = {}  # node index -> when to restart it
        deadline = time.monotonic() + CHAOS_SECONDS
        next_kill = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            now = time.monotonic()
            for i, when in list(down.items()):
                if now >= when:
                    nodes[i].start()
                    del down[i]
            if now >= next_kill and len(down) < 2:
                victim = rng.choice([i for i in range(3) if i not in down])
                nodes[victim].kill()  # SIGKILL, mid-whatever
                kills += 1
                down[victim] = now + rng.uniform(0.2, 1.0)
                next_kill = now + rng.uniform(0.8, 2.0)
            up = [i for i in range(3) if i not in down]
            i = rng.choice(up)
            # Nodes are killed only above, before `up` is chosen, and `start()` returns once a node is ready:
            # every write here goes to a running node and must succeed (an error fails the test).
            async with RemoteNode(nodes[i].url, timeout=5) as remote:
                if documents and rng.random() < 0.6:
                    doc_id = rng.choice(documents)
                    view = await remote.document(SCHEMA, doc_id)
                    if view is not None:
                        await remote.update(authors[i], SCHEMA, view.view_id, {"message": f"{i} {published}"})
                        published += 1
                else:
                    documents.append(await remote.create(authors[i], SCHEMA, {"message": f"{i} {published}"}))
                    published += 1
            await asyncio.sleep(0.05)
        for i in list(down):
            nodes[i].start()
        assert published > 20 and kills >= 4, (published, kills)
        heights = await until_quiet(nodes, [a.public_key for a in authors])
        assert sum(sum(h.values()) for h in heights) >= published
    finally:
        for process in nodes:
            if process.proc is not None:
                process.kill(15)
    states = [await stored_state(process.data_dir) for process in nodes]
    assert states[0] == states[1] == states[2], states
    assert states[0][2] >= published


async def until_schema_everywhere(nodes: list[PandaNode]) -> None:
    for process in nodes:
        async with RemoteNode(process.url) as remote:
            for _ in range(200):
                try:
                    await remote.query(SCHEMA)
                    break
                except QueryRefused as exc:
                    if not schema_missing(exc):
                        raise
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"the schema did not reach {process.data_dir.name}")


async def until_quiet(nodes: list[PandaNode], authors: list[Any], timeout: float = 90.0) -> list[dict[int, int]]:
    """Wait until every node reports the same log heights for every author, twice in a row."""
    deadline = time.monotonic() + timeout
    previous = None
    while time.monotonic() < deadline:
        seen = []
        for process in nodes:
            async with RemoteNode(process.url) as remote:
                seen.append([await remote.log_heights(author) for author in authors])
        if all(s == seen[0] for s in seen) and seen == previous:
            return seen[0]
        previous = seen
        await asyncio.sleep(1.0)
    raise AssertionError(f"nodes did not converge: {previous}")
