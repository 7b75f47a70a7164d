"""Secret groups end to end through `Client`: people with embedded nodes replicating over 127.0.0.1
(real sockets, real OpenMLS, real SQLite files). mDNS stays off."""

from __future__ import annotations

from pathlib import Path

import pytest

from keygroups import Level
from node_adapter import EmbeddedNode, Group
from p2panda.schema import FieldType, Schema
from secret_group.errors import NotMember
from tests.node_adapter.clients import Person, eventually, key_packages_visible


async def _team(alice: Person, bob: Person) -> Group:
    """Alice's ratchet group "team" with Bob added (write level)."""
    group = await alice.c().create_group("team")
    assert alice.node is not None
    await key_packages_visible(alice.node, bob.key)
    await group.add(bob.key)
    return group


async def _pair(tmp_path: Path) -> tuple[Person, Person]:
    alice = await Person(tmp_path, "alice").start()
    bob = await Person(tmp_path, "bob", peers=(alice.address,)).start()
    return alice, bob


@pytest.mark.parametrize("history", [False, True])
async def test_alice_and_bob_exchange_messages_both_ways(tmp_path: Path, history: bool) -> None:
    alice, bob = await _pair(tmp_path)
    try:
        group = await alice.c().create_group("team", history=history)
        assert group.history is history and group.is_member
        assert alice.node is not None
        await key_packages_visible(alice.node, bob.key)
        await group.add(bob.key, Level.WRITE)
        assert await group.members() == {alice.key: Level.MANAGE, bob.key: Level.WRITE}
        await group.send("hello bob")
        bobs = await bob.group(group.id)
        assert bobs.name == "team" and bobs.is_member
        assert await bob.texts(bobs, 1) == ["hello bob"]
        await bobs.send("hello alice")
        assert await alice.texts(group, 2) == ["hello bob", "hello alice"]
        messages = await group.messages()
        assert [(m.author, m.state) for m in messages] == [(alice.key, "sent"), (bob.key, "received")]
        assert [g.id for g in await bob.c().groups()] == [group.id]
        assert group.refused() == [] and bobs.refused() == []
    finally:
        await bob.stop()
        await alice.stop()


async def test_edits_and_deletes_reach_the_other_member(tmp_path: Path) -> None:
    alice, bob = await _pair(tmp_path)
    try:
        group = await _team(alice, bob)
        first = await group.send("frist")
        await group.send("second")
        bobs = await bob.group(group.id)
        await bob.texts(bobs, 2)
        await group.edit(first, "first")

        async def edited() -> bool:
            messages = await bobs.messages()
            return messages[0].text == "first" and messages[0].edited

        await eventually(edited, what="the edit")
        await group.delete_message(first)
        assert [m.text for m in await group.messages()] == ["second"]

        async def deleted() -> bool:
            return [m.text for m in await bobs.messages()] == ["second"]

        await eventually(deleted, what="the delete")
    finally:
        await bob.stop()
        await alice.stop()


async def test_encrypted_documents_of_any_schema(tmp_path: Path) -> None:
    alice, bob = await _pair(tmp_path)
    try:
        assert alice.node is not None and bob.node is not None
        schema: Schema = await alice.node.define_schema(
            alice.key_pair, "note", "a note", {"title": FieldType.parse("str"), "done": FieldType.parse("bool")}
        )
        alice.c().schemas[str(schema.id)] = schema
        bob.c().schemas[str(schema.id)] = schema
        group = await alice.c().create_group("docs", history=True)
        await key_packages_visible(alice.node, bob.key)
        await group.add(bob.key)
        doc_id = await group.create(schema, {"title": "buy milk", "done": False})
        await group.update(doc_id, {"done": True})
        local = await group.document(doc_id)
        assert local is not None and dict(local.fields or {}) == {"title": "buy milk", "done": True}
        bobs = await bob.group(group.id)

        async def bob_sees() -> bool:
            doc = await bobs.document(doc_id, schema)
            return doc is not None and dict(doc.fields or {}) == {"title": "buy milk", "done": True}

        await eventually(bob_sees, what="the updated document")
        assert [d.id for d in await bobs.documents(schema)] == [doc_id]
        # The node holds no document of the inner schema: only envelopes.
        assert (await bob.node.query(schema)).total == 0
    finally:
        await bob.stop()
        await alice.stop()


async def test_removed_member_reads_nothing_new_and_what_she_sends_is_refused(tmp_path: Path) -> None:
    alice, bob = await _pair(tmp_path)
    carol = await Person(tmp_path, "carol", peers=(alice.address,)).start()
    try:
        group = await alice.c().create_group("team")
        assert alice.node is not None
        for person in (bob, carol):
            await key_packages_visible(alice.node, person.key)
            await group.add(person.key)
        await group.send("before")
        carols = await carol.group(group.id)
        bobs = await bob.group(group.id)
        assert await carol.texts(carols, 1) == ["before"]
        await bob.texts(bobs, 1)

        await carol.stop()  # Carol is offline while she is removed
        await group.remove(carol.key)
        assert carol.key not in await group.members()
        await group.send("after")
        await bob.texts(bobs, 2)

        # Carol comes back without a peer: her client still thinks she is a member and sends.
        await carol.start(peers=())
        carols = await carol.c().group(group.id)
        assert carols.is_member
        sneaky = await carols.send("sneaky")
        await carol.stop()
        await carol.start()  # now connected: she receives her removal, the others her message

        async def carol_removed() -> bool:
            return not (await carol.c().group(group.id)).is_member

        await eventually(carol_removed, what="carol learns she was removed")
        carols = await carol.c().group(group.id)
        assert [m.text for m in await carols.messages()] == ["before", "sneaky"]
        with pytest.raises(NotMember):
            await carols.send("still here?")

        for person, g in ((alice, group), (bob, bobs)):

            async def refused(g=g) -> list[tuple[str, str]]:
                return [r for r in g.refused() if r[0] == sneaky]

            [(_, reason)] = await eventually(refused, what=f"{person.name} refuses carol's message")
            assert reason.startswith(("RemovedSender", "NotAuthorised")), reason
            assert [m.text for m in await g.messages()] == ["before", "after"]
    finally:
        for person in (carol, bob, alice):
            if person.client is not None:
                await person.stop()


@pytest.mark.parametrize("history", [False, True])
async def test_dave_added_later_reads_the_past_only_in_a_history_group(tmp_path: Path, history: bool) -> None:
    alice, bob = await _pair(tmp_path)
    dave = await Person(tmp_path, "dave", peers=(alice.address,)).start()
    try:
        assert alice.node is not None
        schema: Schema = await alice.node.define_schema(
            alice.key_pair, "memo", "a memo", {"body": FieldType.parse("str")}
        )
        for person in (alice, bob, dave):
            person.c().schemas[str(schema.id)] = schema
        group = await alice.c().create_group("team", history=history)
        await key_packages_visible(alice.node, bob.key)
        await group.add(bob.key)
        await group.send("one")
        await group.send("two")
        memo = await group.create(schema, {"body": "the plan"})
        await bob.texts(await bob.group(group.id), 2)

        await key_packages_visible(alice.node, dave.key)
        await group.add(dave.key)
        await group.send("three")
        daves = await dave.group(group.id)
        if history:
            assert await dave.texts(daves, 3) == ["one", "two", "three"]
            doc = await eventually(lambda: daves.document(memo, schema), what="dave reads the memo")
            assert doc.fields is not None and doc.fields["body"] == "the plan"
            assert daves.unavailable() == 0
        else:
            assert await dave.texts(daves, 1) == ["three"]

            async def marked() -> int:
                return daves.unavailable()

            assert await eventually(marked, what="pre-join history marked unavailable") == 3
            assert await daves.document(memo, schema) is None
    finally:
        await dave.stop()
        await bob.stop()
        await alice.stop()


async def test_a_member_offline_across_30_commits_reads_everything(tmp_path: Path) -> None:
    alice, bob = await _pair(tmp_path)
    try:
        group = await _team(alice, bob)
        bobs = await bob.group(group.id)
        epoch = group.epoch
        await bob.stop()
        sent = []
        for i in range(30):
            text = f"message {i} in epoch {group.epoch}"
            await group.send(text)
            sent.append(text)
            await group.rotate()
        assert group.epoch == epoch + 30
        await bob.start()
        bobs = await bob.c().group(group.id)
        assert await bob.texts(bobs, 30) == sent

        async def same_epoch() -> bool:
            return bobs.epoch == group.epoch

        await eventually(same_epoch, what="bob reaches alice's epoch")
        assert bobs.refused() == []
    finally:
        if bob.client is not None:
            await bob.stop()
        await alice.stop()


async def test_a_member_catching_up_on_many_messages_of_one_epoch_reads_them_all(tmp_path: Path) -> None:
    """OpenMLS opens a sender's messages at most 100 generations out of order: a reader catching up on
    more than that in one epoch must open them in the sender's order (its log ids), not by document id,
    which is a hash (in id order it read 101 of 300 and refused the rest: "Generation is too old")."""
    alice, bob = await _pair(tmp_path)
    try:
        group = await _team(alice, bob)
        await bob.group(group.id)
        await bob.stop()
        sent = [f"message {i}" for i in range(CATCH_UP)]
        for text in sent:
            await group.send(text)
        # Bob's node (without his client) replicates them all first: his client then finds every one at
        # once in its sweep, as a client of a node that kept running does.
        async with EmbeddedNode(bob.data_dir, replication_port=0, peers=(alice.address,)) as node:

            async def all_arrived() -> bool:
                return (await node.log_heights(alice.key)) == (await alice.c().node.log_heights(alice.key))

            await eventually(all_arrived, what="bob's node holds alice's envelopes")
        await bob.start(peers=())
        bobs = await bob.c().group(group.id)
        assert sorted(await bob.texts(bobs, CATCH_UP)) == sorted(sent)
        assert bobs.refused() == []
    finally:
        if bob.client is not None:
            await bob.stop()
        await alice.stop()


CATCH_UP = 250
