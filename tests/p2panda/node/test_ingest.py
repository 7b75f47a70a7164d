"""Batch ingest (`Node.ingest`, `BatchStore`): one transaction per batch, with exactly the outcome and the
stored state that publishing the same entries one by one gives, bad ones included."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2panda import Hash, KeyPair, P2PandaError
from p2panda.entry import lipmaa
from p2panda.entry.lipmaa import is_skiplink_required
from p2panda.ids import DocumentViewId
from p2panda.node import ForkDetected, Node, NodeConfig, NodeError, SchemaNotFound
from p2panda.node.publish import Published
from p2panda.node.store import Store
from p2panda.operation import Operation, encode_operation
from p2panda.schema import SchemaId

from .helpers import fingerprint, raw_entry

MESSAGE = SchemaId.parse("message_0020d4f2294b7e953e70dd476b5de39d1679ff06a4936bca3ef6fb227e83a126a767")
AUTHORS = [KeyPair.from_private_key(Hash.of(bytes([i])).to_bytes()[2:]) for i in range(3)]
Pair = tuple[bytes, bytes]


def schema_steps(vectors: dict[str, Any]) -> list[Pair]:
    """The node_flow entries that define the message schema (two fields, then the schema)."""
    steps = vectors["node_flow"]["steps"]
    return [(bytes.fromhex(s["entry"]), bytes.fromhex(s["operation"])) for s in steps[:2]]


def message_log(kp: KeyPair, log_id: int, length: int, tag: str = "") -> list[Pair]:
    """A document created and updated `length - 1` times, in one log."""
    pairs: list[Pair] = []
    hashes: list[Hash] = []
    for seq in range(1, length + 1):
        if seq == 1:
            operation = Operation.create(MESSAGE, {"message": f"{tag}{log_id} created"})
        else:
            operation = Operation.update(MESSAGE, DocumentViewId([hashes[-1]]), {"message": f"{tag}{log_id} v{seq}"})
        payload = encode_operation(operation)
        skiplink = hashes[lipmaa(seq) - 1] if is_skiplink_required(seq) else None
        raw = raw_entry(kp, log_id, seq, payload, hashes[-1] if hashes else None, skiplink)
        hashes.append(Hash.of(raw))
        pairs.append((raw, payload))
    return pairs


def spoiled(pairs: list[Pair], rng: random.Random) -> list[Pair]:
    """Bad entries among good ones: a forged signature, a mutated payload, a fork, a duplicate."""
    raw, payload = rng.choice(pairs)
    forged = raw[:-1] + bytes([raw[-1] ^ 1])
    mutated = payload[:-1] + bytes([payload[-1] ^ 1])
    kp = rng.choice(AUTHORS)
    fork_payload = encode_operation(Operation.create(MESSAGE, {"message": "a fork"}))
    fork = raw_entry(kp, 0, 1, fork_payload)
    return [(forged, payload), (raw, mutated), (fork, fork_payload), (raw, payload)]


async def one_by_one(node: Node, pairs: list[Pair]) -> list[Published | P2PandaError]:
    outcomes: list[Published | P2PandaError] = []
    for entry, operation in pairs:
        try:
            outcomes.append(await node.publish(entry, operation))
        except P2PandaError as exc:
            outcomes.append(exc)
    return outcomes


def summary(outcomes: list[Published | P2PandaError]) -> list[str]:
    return [o.entry.hash.hex() if isinstance(o, Published) else type(o).__name__ for o in outcomes]


async def test_a_batch_builds_on_itself(node: Node, vectors: dict[str, Any]) -> None:
    """Schema definitions, a document and its updates in one batch: later entries use earlier ones."""
    pairs = schema_steps(vectors) + message_log(AUTHORS[0], 0, 40)
    outcomes = await node.ingest(pairs)
    assert all(isinstance(o, Published) for o in outcomes), summary(outcomes)
    assert node.schema(str(MESSAGE)) is not None
    docs = await node.documents(str(MESSAGE))
    assert [dict(d.fields or {}) for d in docs] == [{"message": "0 v40"}]
    stored = await node.document(docs[0].id)
    assert stored is not None and len(stored.operations) == 40


async def test_refused_entries_leave_no_trace_and_forks_leave_proof(node: Node, vectors: dict[str, Any]) -> None:
    await node.ingest(schema_steps(vectors) + message_log(AUTHORS[0], 0, 5))
    before = await fingerprint(node)
    good = message_log(AUTHORS[0], 0, 5)
    forged = (good[1][0][:-1] + bytes([good[1][0][-1] ^ 0x80]), good[1][1])
    fork_payload = encode_operation(Operation.create(MESSAGE, {"message": "other"}))
    fork = (raw_entry(AUTHORS[0], 0, 1, fork_payload), fork_payload)
    unknown = encode_operation(Operation.create(SchemaId.parse("venue_" + "0020" + "ab" * 32), {"name": "x"}))
    outcomes = await node.ingest([forged, fork, (raw_entry(AUTHORS[1], 0, 1, unknown), unknown)])
    assert [type(o).__name__ for o in outcomes] == ["InvalidSignature", "ForkDetected", "SchemaNotFound"]
    assert isinstance(outcomes[1], ForkDetected) and isinstance(outcomes[2], SchemaNotFound)
    proofs = await node.fork_proofs()
    assert [(p[0], p[1], p[2], p[4]) for p in proofs] == [(AUTHORS[0].public_key.hex(), 0, 1, fork[0])]
    from sqlalchemy import delete

    from p2panda.node.tables import fork_proofs

    await node.db.write(lambda conn: conn.execute(delete(fork_proofs)))
    assert await fingerprint(node) == before


async def test_ingest_announces_entries_and_changes(node: Node, vectors: dict[str, Any]) -> None:
    await node.ingest(schema_steps(vectors))
    watch = node.watch_entries()
    subscription = node.subscribe(frozenset({str(MESSAGE)}))
    await node.ingest(message_log(AUTHORS[0], 0, 3) + message_log(AUTHORS[1], 0, 2))
    seen = [watch.get_nowait() for _ in range(watch.qsize())]
    first, second = AUTHORS[0].public_key.hex(), AUTHORS[1].public_key.hex()
    assert seen == [(first, 0, 1), (first, 0, 2), (first, 0, 3), (second, 0, 1), (second, 0, 2)]
    changes = [await anext(subscription) for _ in range(5)]
    subscription.close()
    assert [c.public_key for c in changes] == [AUTHORS[0].public_key] * 3 + [AUTHORS[1].public_key] * 2
    node.unwatch_entries(watch)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), cuts=st.lists(st.integers(1, 200), max_size=6))
async def test_ingest_equals_publish_one_by_one(
    tmp_path: Path, vectors: dict[str, Any], seed: int, cuts: list[int]
) -> None:
    """Random interleavings of logs (some entries before their predecessors), bad entries among them, split
    into random batches: the same outcome per entry and the same database as publishing one by one."""
    rng = random.Random(seed)
    logs = [message_log(kp, log_id, rng.randint(1, 12)) for kp in AUTHORS[:2] for log_id in range(2)]
    pairs = schema_steps(vectors)
    while any(logs):
        log = rng.choice([lg for lg in logs if lg])
        pairs.append(log.pop(0))
    for bad in spoiled(pairs[2:], rng):
        pairs.insert(rng.randint(0, len(pairs)), bad)
    if rng.random() < 0.5:  # some entries out of order: they are refused now, as by publish
        i = rng.randrange(len(pairs) - 1)
        pairs[i], pairs[i + 1] = pairs[i + 1], pairs[i]
    directory = tmp_path / str(seed) / str(len(cuts))
    async with Node(NodeConfig(directory / "one")) as single, Node(NodeConfig(directory / "batch")) as batched:
        expected = await one_by_one(single, pairs)
        got: list[Published | P2PandaError] = []
        bounds = sorted({0, len(pairs), *(c % (len(pairs) + 1) for c in cuts)})
        for start, end in itertools.pairwise(bounds):
            got += await batched.ingest(pairs[start:end])
        assert summary(got) == summary(expected)
        assert await fingerprint(batched) == await fingerprint(single)


@pytest.mark.parametrize("batch", [1, 7, 1000])
async def test_ingest_large_batches_match(tmp_path: Path, vectors: dict[str, Any], batch: int) -> None:
    pairs = schema_steps(vectors) + [p for i in range(3) for p in message_log(AUTHORS[i], i, 30, tag="t")]
    async with Node(NodeConfig(tmp_path / "one")) as single, Node(NodeConfig(tmp_path / "batch")) as batched:
        await one_by_one(single, pairs)
        for i in range(0, len(pairs), batch):
            await batched.ingest(pairs[i : i + batch])
        assert await fingerprint(batched) == await fingerprint(single)


class _RefusesAfterWriting:
    """A policy that fails on one entry after the pipeline has written it (as a policy's own store error
    would): the batch cannot leave that entry out, so it is redone one transaction per entry."""

    def __init__(self, refused: str) -> None:
        self.refused = refused
        self.resets = 0

    def governs(self, schema: Any) -> bool:
        return False

    def refusals(self, store: Any, schema: Any, operations: Any, *, writing: bool) -> dict[str, str]:
        return {}

    def accepted(self, store: Any, written: Any) -> list[str]:
        if written.id == self.refused:
            raise NodeError(f"policy refuses {written.id}")
        return []

    def reset(self) -> None:
        self.resets += 1


async def test_a_failure_after_writing_redoes_the_batch_entry_by_entry(tmp_path: Path, vectors: dict[str, Any]) -> None:
    pairs = schema_steps(vectors) + message_log(AUTHORS[0], 0, 3) + message_log(AUTHORS[1], 0, 2)
    refused = Hash.of(pairs[3][0]).hex()
    policy = _RefusesAfterWriting(refused)
    async with Node(NodeConfig(tmp_path / "a", policy=policy)) as node:
        outcomes = await node.ingest(pairs)
        assert summary(outcomes)[3] == "NodeError" and policy.resets >= 1
        assert all(isinstance(o, Published) for i, o in enumerate(outcomes) if i not in (3, 4)), summary(outcomes)
        # the log's next entry builds on the refused one, so it waits (as with publish)
        assert type(outcomes[4]).__name__ == "SeqNumMismatch"
        assert not await node.db.read(lambda conn: Store(conn).has_entry(refused))
        assert node.schema(str(MESSAGE)) is not None
