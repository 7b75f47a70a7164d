"""A misbehaving peer over a real connection on 127.0.0.1: forged, mutated, forking and garbage entries are
rejected and recorded (`Replication.rejected`, the log, a fork proof), the session goes on, and the
receiving store is unchanged apart from the fork proof."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from node_adapter.embedded import with_key_groups
from p2panda import Hash, KeyPair
from p2panda.entry import decode_entry
from p2panda.node import Node, NodeConfig
from p2panda.node.replication import EntryMessage, Have, Replication, ReplicationConfig, SyncRequest, encode_message
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
