"""Replication between `panda node` processes on 127.0.0.1: a chain A-B-C relays both ways, live; the
wrong network key gets nothing; replication messages round-trip and refuse mutated frames."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node_adapter import QueryRefused, RemoteNode
from p2panda import KeyPair
from p2panda.ids import DocumentId
from p2panda.node.replication import (
    Announce,
    EntryMessage,
    Have,
    InvalidMessage,
    Message,
    SyncDone,
    SyncRequest,
    decode_message,
    encode_message,
    sort_target,
)
from p2panda.schema import FieldType, Schema, SchemaId
from tests.p2panda.node.process import PandaNode

MESSAGE = "message_0020d4f2294b7e953e70dd476b5de39d1679ff06a4936bca3ef6fb227e83a126a767"
SCHEMA = Schema(SchemaId.parse(MESSAGE), "A simple message", {"message": FieldType.parse("str")})
ALICE = KeyPair.from_private_key(bytes([5]) * 32)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    """Poll `check` until it is true; its errors are the test's errors (never read as "not yet")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{check.__name__} not reached in {timeout} s")


def schema_missing(exc: QueryRefused) -> bool:
    """The refusal says the node does not know SCHEMA yet (its GraphQL API has no field for it)."""
    return f"Cannot query field '{SCHEMA.id}'" in str(exc) or f"Cannot query field 'all_{SCHEMA.id}'" in str(exc)


@pytest.fixture
def processes() -> Iterator[list[PandaNode]]:
    started: list[PandaNode] = []
    yield started
    for process in started:
        if process.proc is not None:
            process.kill()


def node(tmp_path: Path, name: str, started: list[PandaNode], *extra: str) -> PandaNode:
    process = PandaNode(tmp_path / name, extra=list(extra))
    process.start()
    started.append(process)
    return process


async def test_a_chain_relays_both_ways(tmp_path: Path, processes: list[PandaNode], vectors: dict[str, Any]) -> None:
    a = node(tmp_path, "a", processes)
    assert a.address == f"{a.node_key}@127.0.0.1:{a.replication_port}"  # the address a node logs at start
    b = node(tmp_path, "b", processes, "--peer", a.address)
    c = node(tmp_path, "c", processes, "--peer", b.address)
    steps = vectors["node_flow"]["steps"]
    async with RemoteNode(a.url) as on_a, RemoteNode(c.url) as on_c:
        for step in steps:
            await on_a.publish(bytes.fromhex(step["entry"]), bytes.fromhex(step["operation"]))
        document = DocumentId.from_hex(steps[2]["entry_hash"])

        async def on_c_updated() -> bool:
            try:
                doc = await on_c.document(SCHEMA, document)
            except QueryRefused as exc:
                if schema_missing(exc):
                    return False  # the schema has not reached C yet
                raise
            return doc is not None and doc.fields == {"message": "Hello again"}

        await eventually(on_c_updated)
        created = await on_c.create(ALICE, SCHEMA, {"message": "from c"})

        async def on_a_created() -> bool:
            doc = await on_a.document(SCHEMA, created)
            return doc is not None and doc.fields == {"message": "from c"}

        start = time.monotonic()
        await eventually(on_a_created)
        assert time.monotonic() - start < 5  # live mode, not rounds


async def test_wrong_network_key_or_node_key_gets_nothing(
    tmp_path: Path, processes: list[PandaNode], vectors: dict[str, Any]
) -> None:
    a = node(tmp_path, "a", processes)
    private = node(tmp_path, "p", processes, "--peer", a.address, "--network-key", "ab" * 32)
    # Dialling A's address with another node's key: standard SHS, A cannot open the auth and closes.
    other = KeyPair.from_private_key(bytes([3]) * 32).public_key.hex()
    wrong = node(tmp_path, "w", processes, "--peer", f"{other}@127.0.0.1:{a.replication_port}")
    # Positive control: a node dialling A the same way on A's network, with A's key, receives the entry.
    public = node(tmp_path, "q", processes, "--peer", a.address)
    steps = vectors["node_flow"]["steps"]
    async with RemoteNode(a.url) as on_a, RemoteNode(private.url) as on_private, RemoteNode(public.url) as on_public:
        await on_a.publish(bytes.fromhex(steps[0]["entry"]), bytes.fromhex(steps[0]["operation"]))
        key = KeyPair.from_private_key(bytes.fromhex(vectors["node_flow"]["private_key"])).public_key

        async def public_has_it() -> bool:
            return await on_public.log_heights(key) == {0: 1}

        await eventually(public_has_it)
        # They did dial, and each failure is one log line naming the message and why, on both sides.
        await eventually(lambda: _logged(private, "M2 server hello: the peer closed the connection after 0 of 64"))
        await eventually(lambda: _logged(a, "M1 client hello: the hello is not for our network key"))
        await eventually(
            lambda: _logged(
                wrong, f"M4 server accept: the peer closed the connection after 0 of 80 bytes (it is not node {other}"
            )
        )
        await eventually(
            lambda: _logged(a, f"M3 client auth: the box does not open (the client did not dial node key {a.node_key}")
        )
        assert await on_private.log_heights(key) == {}
        async with RemoteNode(wrong.url) as on_wrong:
            assert await on_wrong.log_heights(key) == {}
        assert not [line for p in (a, private, wrong) for line in p.log if "Traceback" in line]


async def _logged(process: PandaNode, text: str) -> bool:
    return any(text in line for line in process.log)


def test_messages_round_trip_and_refuse_bad_frames() -> None:
    target = sort_target({MESSAGE, "schema_field_definition_v1", "schema_definition_v1"})
    assert target == ("schema_definition_v1", "schema_field_definition_v1", MESSAGE)
    messages = [
        Announce(1700000000, target),
        SyncRequest(3, 0, target),
        EntryMessage(3, b"entry", b"operation"),
        SyncDone(3, True),
        Have(3, ((bytes(32), ((0, 5), (2, 1))),)),
    ]
    for message in messages:
        assert decode_message(encode_message(message)) == message
    bad = {
        "not cbor": b"\xff\x00",
        "trailing": encode_message(SyncDone(1, False)) + b"\x00",
        "unknown type": cbor2.dumps([7, 1]),
        "wrong length": cbor2.dumps([3, 1]),
        "empty target": cbor2.dumps([1, 1, 0, []]),
        "unsorted target": cbor2.dumps([1, 1, 0, list(reversed(target))]),
        "null operation": cbor2.dumps([2, 1, b"e", None]),
        "negative session": cbor2.dumps([3, -1, True]),
        "short key": cbor2.dumps([10, 1, [[bytes(31), []]]]),
        "mode": cbor2.dumps([1, 1, 1, list(target)]),
    }
    for what, frame in bad.items():
        with pytest.raises(InvalidMessage):
            decode_message(frame)
            pytest.fail(f"{what} was accepted")


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_mutated_frames_decode_or_are_refused(noise: bytes) -> None:
    """A frame either is refused or decodes to the one message whose encoding it is (decoding is canonical:
    two different frames never mean the same message)."""
    frame = encode_message(Have(1, ((bytes(32), ((0, 5),)),)))
    mutated = frame[: len(noise) % len(frame)] + noise
    try:
        message = decode_message(mutated)
    except InvalidMessage:
        return
    assert encode_message(message) == mutated


@settings(max_examples=300)
@given(
    st.one_of(
        st.builds(SyncDone, st.integers(0, 2**32), st.booleans()),
        st.builds(EntryMessage, st.integers(0, 2**32), st.binary(max_size=40), st.binary(max_size=40)),
        st.builds(
            Have,
            st.integers(0, 2**32),
            st.lists(
                st.tuples(
                    st.binary(min_size=32, max_size=32),
                    st.lists(st.tuples(st.integers(0, 9), st.integers(1, 99)), max_size=3).map(tuple),
                ),
                max_size=3,
            ).map(tuple),
        ),
    )
)
def test_every_message_round_trips(message: Message) -> None:
    # The other half of the property above: a decoder that refused everything would pass it alone.
    assert decode_message(encode_message(message)) == message
