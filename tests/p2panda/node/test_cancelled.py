"""A publish or a batch ingest whose caller is cancelled (a client hanging up, a replication session
breaking) still runs to its end: what its transaction commits is announced to subscribers and to
replication watchers. Before, a cancel that landed after the commit lost the announcement, so clients
never heard of entries their node held and live replication never forwarded them."""

from __future__ import annotations

import asyncio
import contextlib

from p2panda import KeyPair
from p2panda.entry import sign_entry
from p2panda.node import Node
from p2panda.operation import Operation, encode_operation
from p2panda.schema import SchemaId, SystemSchema

FIELD_DEFINITION = SchemaId.system_schema(SystemSchema.SCHEMA_FIELD_DEFINITION_V1)


def _entries(kp: KeyPair, count: int) -> list[tuple[bytes, bytes]]:
    pairs = []
    for log_id in range(count):
        payload = encode_operation(Operation.create(FIELD_DEFINITION, {"name": f"f{log_id}", "type": "str"}))
        entry = sign_entry(kp, log_id=log_id, seq_num=1, payload=payload, backlink=None, skiplink=None)
        pairs.append((entry, payload))
    return pairs


async def _cancel_soon(call: asyncio.Task[object]) -> None:
    await asyncio.sleep(0)  # the call has started its database write
    call.cancel()
    with contextlib.suppress(asyncio.CancelledError):  # cancelled from the caller's side, as on a hang-up
        await call


async def test_a_cancelled_publish_is_announced_when_it_commits(node: Node) -> None:
    kp = KeyPair.generate()
    changes = node.subscribe(frozenset({str(FIELD_DEFINITION)}))
    watch = node.watch_entries()
    pairs = _entries(kp, 20)
    for entry, payload in pairs:
        await _cancel_soon(asyncio.create_task(node.publish(entry, payload)))
    await asyncio.sleep(0.5)  # whatever was started has finished
    stored = [log_id for log_id, _ in enumerate(pairs) if (await node.log_heights(kp.public_key)).get(log_id)]
    assert stored, "no publish committed: the test cancels too early to show anything"
    announced = set()
    while not changes._queue.empty():
        announced.add(changes._queue.get_nowait())
    watched = {log_id for _, log_id, _ in [watch.get_nowait() for _ in range(watch.qsize())]}
    assert watched == set(stored)
    assert len(announced) == len(stored)


async def test_a_cancelled_batch_ingest_is_announced_when_it_commits(node: Node) -> None:
    kp = KeyPair.generate()
    watch = node.watch_entries()
    await _cancel_soon(asyncio.create_task(node.ingest(_entries(kp, 50))))
    await asyncio.sleep(0.5)
    heights = await node.log_heights(kp.public_key)
    assert len(heights) == 50, "the batch did not commit: nothing to show"
    assert {log_id for _, log_id, _ in [watch.get_nowait() for _ in range(watch.qsize())]} == set(heights)
