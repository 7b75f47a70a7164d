"""Concurrent commits converge between real embedded nodes replicating over 127.0.0.1 (issue 17, first
"done when"): two managers on two sides of a partition commit concurrently, one removes Carol, one adds
Erin, members on both sides send; after the partition heals every member is in the same epoch with the
same epoch authenticator and member list, and every message is read once by everyone entitled to it.

The partition is cut by restarting nodes with other peers: side A is Alice (manager) and Dave; side B is
Bob (manager), Carol and Erin. Every node keeps its replication port across restarts, so a peer that
dials it later finds it again. The group is a ratchet group: a member reads what was sent in the epochs
it belonged to (on the winning branch, or on a losing branch it was part of, re-sent copies shown once).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from keygroups import Level
from node_adapter import Group
from tests.node_adapter.clients import Person, eventually, key_packages_visible


async def _state(person: Person, group: Group) -> tuple[int, bytes, frozenset[str]]:
    client = person.c()
    record = client.record(group.id)
    mls = client.engine.mls(record)
    return mls.epoch, mls.epoch_authenticator(), frozenset(k.hex() for k in mls.members())


async def _texts(group: Group) -> list[str]:
    return sorted(m.text for m in await group.messages())


@pytest.mark.skip(
    reason="not finished: under pytest a node's stop() still hangs at the partition (Server.wait_closed), "
    "see the convergence2 report; without it the run reached the heal with Alice, Bob and Dave converged"
)
async def test_partitioned_managers_commit_concurrently_and_converge(tmp_path: Path) -> None:
    alice = await Person(tmp_path, "alice").start()
    hub = (alice.address,)
    bob, carol, dave, erin = (Person(tmp_path, name, peers=hub) for name in ("bob", "carol", "dave", "erin"))
    people = [alice, bob, carol, dave, erin]
    try:
        for person in people[1:]:
            await person.start()
        assert alice.node is not None
        for person in people[1:]:
            await key_packages_visible(alice.node, person.key)
        group = await alice.c().create_group("team")
        await group.add(bob.key, Level.MANAGE)
        await group.add(carol.key, Level.WRITE)
        await group.add(dave.key, Level.WRITE)
        groups = {alice.name: group}
        for person in (bob, carol, dave):
            groups[person.name] = await person.group(group.id)
        epoch = (await _state(alice, group))[0]
        for person in (bob, carol, dave):

            async def reached(person: Person = person) -> bool:
                return (await _state(person, groups[person.name]))[0] == epoch

            await eventually(reached, what=f"{person.name} reaches epoch {epoch}")
        await groups["carol"].send("before the partition")
        for person in (alice, bob, dave):
            assert await person.texts(groups[person.name], 1) == ["before the partition"]
        assert bob.node is not None
        await key_packages_visible(bob.node, erin.key)

        # The partition: A = {alice, dave}, B = {bob, carol, erin}. Nobody dials across.
        for person in people:
            await person.stop()
        await alice.start(peers=())
        await dave.start(peers=hub)
        await bob.start(peers=())
        await carol.start(peers=(bob.address,))
        await erin.start(peers=(bob.address,))
        for person in (alice, bob, carol, dave):
            groups[person.name] = await person.c().group(group.id)

        await groups["alice"].remove(carol.key)  # side A: epoch 2 removes Carol
        await groups["bob"].add(erin.key, Level.WRITE)  # side B: a rival epoch 2 adds Erin
        groups["erin"] = await erin.group(group.id)

        async def dave_removed_carol() -> bool:
            return carol.key.hex() not in (await _state(dave, groups["dave"]))[2]

        await eventually(dave_removed_carol, what="dave applies the removal")
        await groups["dave"].send("from side A")
        await groups["bob"].send("from side B")
        assert await erin.texts(groups["erin"], 1) == ["from side B"]
        assert (await _state(erin, groups["erin"]))[0] == (await _state(alice, groups["alice"]))[0]  # rivals

        # Heal: Bob's node dials Alice's again.
        await bob.stop()
        await bob.start(peers=hub)
        groups["bob"] = await bob.c().group(group.id)
        remaining = [alice, bob, dave, erin]
        wanted = frozenset(p.key.hex() for p in remaining)

        async def converged() -> bool:
            states = [await _state(p, groups[p.name]) for p in remaining if groups[p.name].is_member]
            return len(states) == len(remaining) and len(set(states)) == 1 and states[0][2] == wanted

        await eventually(converged, timeout=90, what="every member on one branch")
        assert not groups["carol"].is_member or carol.key.hex() not in (await _state(alice, groups["alice"]))[2]

        await groups["erin"].send("after healing")
        everyone = ["after healing", "from side A", "from side B"]
        for person in (alice, bob, dave):

            async def read_all(person: Person = person) -> bool:
                return await _texts(groups[person.name]) == sorted([*everyone, "before the partition"])

            await eventually(read_all, timeout=60, what=f"{person.name} reads every message once")

        async def erin_reads() -> bool:
            return await _texts(groups["erin"]) == ["after healing", "from side B"]

        await eventually(erin_reads, timeout=60, what="erin reads from her join on (side B's message once)")

        async def carol_is_out() -> bool:
            return not groups["carol"].is_member

        await eventually(carol_is_out, timeout=60, what="carol learns she was removed")
        assert "after healing" not in await _texts(groups["carol"])
        assert "from side A" not in await _texts(groups["carol"])
        final = {await _state(p, groups[p.name]) for p in remaining}
        assert len(final) == 1
    finally:
        for person in people:
            if person.client is not None:
                await person.stop()
