"""A misbehaving peer over a real connection on 127.0.0.1: forged, mutated, forking and garbage entries are
rejected and recorded (`Replication.rejected`, the log, a fork proof), the session goes on, and the
receiving store is unchanged apart from the fork proof."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from node_adapter.embedded import with_key_groups
from p2panda import Hash, KeyPair
from p2panda.entry import decode_entry
from p2panda.node import Node, NodeConfig
from p2panda.node.replication import (
    EntryMessage,
    Have,
    Peer,
    Replication,
    ReplicationConfig,
    SyncRequest,
    encode_message,
)
from p2panda.node.store import Store
from p2panda.node.tables import fork_proofs
from p2panda.node.transport import connect
from p2panda.operation import Operation, encode_operation

from .helpers import fingerprint, raw_entry
from .test_ingest import MESSAGE, message_log, schema_steps
from .test_replication import eventually


@pytest.fixture
async def receiver(tmp_path: Path, vectors: dict[str, Any]) -> AsyncIterator[tuple[Node, Replication]]:
    async with Node(with_key_groups(NodeConfig(tmp_path / "receiver"))) as node:
        steps = vectors["node_flow"]["steps"]
        await node.ingest([(bytes.fromhex(s["entry"]), bytes.fromhex(s["operation"])) for s in steps])
        replication = Replication(node, ReplicationConfig(KeyPair.generate(), "127.0.0.1", 0))
        await replication.start()
        try:
            yield node, replication
        finally:
            await replication.stop()


async def test_bad_entries_from_a_peer_are_rejected_and_change_nothing(
    receiver: tuple[Node, Replication], vectors: dict[str, Any]
) -> None:
    node, replication = receiver
    before = await fingerprint(node)
    author = KeyPair.from_private_key(bytes.fromhex(vectors["node_flow"]["private_key"]))
    fresh = message_log(KeyPair.generate(), 0, 2)
    (good_raw, good_payload), (next_raw, next_payload) = fresh
    forged = good_raw[:-1] + bytes([good_raw[-1] ^ 1])
    mutated = good_payload[:-2] + b"\x00" + good_payload[-1:]
    fork_payload = encode_operation(Operation.create(MESSAGE, {"message": "a second seq 1"}))
    first = vectors["node_flow"]["steps"][2]  # held by the receiver: another entry at its place is a fork
    fork = raw_entry(author, int(first["log_id"]), int(first["seq_num"]), fork_payload)
    garbage = b"\x00\x01\x02"
    bad = [(forged, good_payload), (good_raw, mutated), (fork, fork_payload), (garbage, b"")]

    reader, writer = await asyncio.open_connection("127.0.0.1", replication.port)
    stream = await connect(reader, writer, KeyPair.generate(), replication.config.key_pair.public_key)
    try:
        await stream.send_message(encode_message(SyncRequest(0, 0, (str(MESSAGE),))))
        await stream.send_message(encode_message(Have(0, ())))
        for raw, payload in bad:
            await stream.send_message(encode_message(EntryMessage(0, raw, payload)))

        async def all_rejected() -> bool:
            return len(replication.rejected) == len(bad)

        await eventually(all_rejected)
        rejected = {r.entry_hash: r.reason for r in replication.rejected}
        assert set(rejected) == {Hash.of(raw).hex() for raw, _ in bad}
        assert "signature" in rejected[Hash.of(forged).hex()]
        assert "payload" in rejected[Hash.of(good_raw).hex()]
        assert "fork" in rejected[Hash.of(fork).hex()]
        proofs = await node.fork_proofs()
        assert [(p[0], p[4]) for p in proofs] == [(author.public_key.hex(), fork)]
        await node.db.write(lambda conn: conn.execute(delete(fork_proofs)))
        assert await fingerprint(node) == before

        # The session goes on: good entries from the same peer are taken.
        await stream.send_message(encode_message(EntryMessage(0, good_raw, good_payload)))
        await stream.send_message(encode_message(EntryMessage(0, next_raw, next_payload)))

        async def taken() -> bool:
            return await node.log_heights(decode_entry(good_raw).public_key) == {0: 2}

        await eventually(taken)
    finally:
        await stream.close()


async def test_entries_arrive_in_any_order(receiver: tuple[Node, Replication], vectors: dict[str, Any]) -> None:
    """A log sent backwards: entries that arrive before their backlink wait and are taken once it arrives;
    repeats of entries the receiver holds are not rejections."""
    node, replication = receiver
    kp = KeyPair.generate()
    pairs = message_log(kp, 0, 6)
    reader, writer = await asyncio.open_connection("127.0.0.1", replication.port)
    stream = await connect(reader, writer, KeyPair.generate(), replication.config.key_pair.public_key)
    try:
        await stream.send_message(encode_message(SyncRequest(0, 0, (str(MESSAGE),))))
        await stream.send_message(encode_message(Have(0, ())))
        for raw, payload in reversed(pairs + schema_steps(vectors)):
            await stream.send_message(encode_message(EntryMessage(0, raw, payload)))

        async def taken() -> bool:
            return await node.log_heights(kp.public_key) == {0: 6}

        await eventually(taken)
        assert not replication.rejected
    finally:
        await stream.close()


async def test_a_dialler_notices_its_peer_restart_and_gets_what_the_peer_took_since(
    tmp_path: Path, vectors: dict[str, Any]
) -> None:
    """A session ends when the peer's side closes, even while this node has nothing to send: the dial loop
    then reconnects to the restarted peer on its port. (Before, the live sender waited for local entries
    forever and the dialler never heard of the restarted peer again.)"""
    author = KeyPair.generate()
    first, second = message_log(author, 0, 2)
    dialler_key = KeyPair.generate()

    peer_key = KeyPair.generate()  # the same node key across the restart, as a node's key file gives

    async def start_peer(port: int) -> tuple[Node, Replication]:
        node = Node(with_key_groups(NodeConfig(tmp_path / "peer")))
        await node.start()
        replication = Replication(node, ReplicationConfig(peer_key, "127.0.0.1", port))
        await replication.start()
        return node, replication

    peer, peer_replication = await start_peer(0)
    port = peer_replication.port
    await peer.ingest([*schema_steps(vectors), first])
    async with Node(with_key_groups(NodeConfig(tmp_path / "dialler"))) as dialler:
        replication = Replication(
            dialler,
            ReplicationConfig(dialler_key, "127.0.0.1", 0, peers=(Peer("127.0.0.1", port, peer_key.public_key),)),
        )
        await replication.start()
        try:

            async def has(count: int) -> Callable[[], Awaitable[bool]]:
                async def check() -> bool:
                    heights = await dialler.db.read(lambda conn: Store(conn).all_log_heights())
                    return any(h[0] == author.public_key.hex() and h[2] == count for h in heights)

                return check

            await eventually(await has(1))
            await peer_replication.stop()
            await peer.stop()
            peer, peer_replication = await start_peer(port)
            await peer.ingest([second])
            await eventually(await has(2))
        finally:
            await replication.stop()
            await peer_replication.stop()
            await peer.stop()


@pytest.mark.timeout(20)
async def test_stop_returns_when_tasks_end_in_the_same_loop_iteration(tmp_path: Path) -> None:
    """Two dial loops backing off from closed ports end in the same loop iteration once cancelled: the
    second's done callback (which drops it from the task set) is queued after `stop()` resumes. `stop()`
    must not wait for the set to empty by awaiting finished tasks (that never yields: it spun for ever,
    and the event loop with it, which made every test that stopped a replicating node hang)."""
    closed = []
    for _ in range(2):
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        closed.append(Peer("127.0.0.1", server.sockets[0].getsockname()[1], KeyPair.generate().public_key))
        server.close()
        await server.wait_closed()
    async with Node(with_key_groups(NodeConfig(tmp_path / "node"))) as node:
        for _ in range(5):
            replication = Replication(node, ReplicationConfig(KeyPair.generate(), "127.0.0.1", 0, peers=tuple(closed)))
            await replication.start()
            await asyncio.sleep(0.05)  # both dial loops refused, sleeping in their backoff
            await replication.stop()
            assert not [task for task in replication._tasks if not task.done()]
