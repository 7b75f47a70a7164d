"""`node_adapter.Chat` end to end: real clients on real embedded nodes replicating over 127.0.0.1.
Checks CH1-CH5 of `node_adapter/chat.py`, the safety number and the schema constants."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from keygroups import Level
from node_adapter.chat import FileIncomplete, FileRefused, InvalidName, parse_public_key
from node_adapter.safety import fingerprint, safety_number
from p2panda.identity import InvalidPublicKey, KeyPair
from secret_group import schemas
from tests.node_adapter.clients import key_packages_visible
from tests.tui.people import Person, eventually

pytestmark = pytest.mark.timeout(120)


def test_schema_constants_match_the_definitions() -> None:
    _, by_name = schemas.build_bundle()
    assert str(by_name["chat_profile"].id) == schemas.CHAT_PROFILE
    assert str(by_name["chat_file"].id) == schemas.CHAT_FILE
    assert str(by_name["chat_file_piece"].id) == schemas.CHAT_FILE_PIECE
    assert str(by_name["chat_leave"].id) == schemas.CHAT_LEAVE and schemas.CHAT_LEAVE in schemas.INNER_SCHEMAS
    assert schemas.CHAT_PROFILE in schemas.INNER_SCHEMAS and schemas.CHAT_FILE_PIECE in schemas.INNER_SCHEMAS


def test_safety_number_is_the_same_on_both_sides_and_differs_per_pair() -> None:
    a, b, c = (KeyPair.generate().public_key for _ in range(3))
    number = safety_number(a, b)
    assert number == safety_number(b, a)
    assert number != safety_number(a, c)
    groups = number.split(" ")
    assert len(groups) == 12 and all(len(g) == 5 and g.isdigit() for g in groups)
    assert fingerprint(a).replace(" ", "") == a.hex()[:16]


def test_ch5_a_bad_public_key_is_named() -> None:
    with pytest.raises(InvalidPublicKey):
        parse_public_key("not-a-key")


async def _pair(tmp_path: Path) -> tuple[Person, Person]:
    alice = await Person(tmp_path, "alice").start()
    bob = await Person(tmp_path, "bob", peers=(alice.address,)).start()
    return alice, bob


async def test_names_search_unread_and_mentions(tmp_path: Path) -> None:
    alice, bob = await _pair(tmp_path)
    try:
        await alice.c().set_name("Alice")
        await bob.c().set_name("Bob")
        group = await alice.c().client.create_group("team")
        assert alice.node is not None
        await key_packages_visible(alice.node, bob.key)
        async with alice.c().lock:  # the chat writes alice's profile in the background
            await group.add(bob.key, Level.WRITE)
        await group.send("the quick brown fox")
        await group.send('hey @bob, a "quoted" NEAR word and 50% off*')

        async def bob_reads() -> bool:
            return bob.c().unread(group.id) == (2, 1)

        await eventually(bob_reads, what="bob's unread count with one mention")
        assert bob.c().name_of(alice.key) == "Alice"
        assert [h.snippet for h in bob.c().search("quick fo")] == ["the [quick] brown [fox]"]
        # CH2: FTS5 syntax in a search is text, never an error
        assert len(bob.c().search('"quoted" NEAR 50% off*')) == 1
        assert bob.c().search("AND OR") == []
        bob.c().mark_read(group.id)
        assert bob.c().unread(group.id) == (0, 0)

        async def alice_knows_bob() -> bool:
            return alice.c().name_of(bob.key) == "Bob"

        await eventually(alice_knows_bob, what="bob's profile at alice")
        # An edit replaces the indexed text, a delete removes it.
        first = (await group.messages())[0].id
        await group.edit(first, "the slow red fox")

        async def edited() -> bool:
            return [h.id for h in bob.c().search("slow")] == [first] and bob.c().search("quick") == []

        await eventually(edited, what="the edit in bob's index")
        await group.delete_message(first)

        async def deleted() -> bool:
            return bob.c().search("fox") == []

        await eventually(deleted, what="the delete in bob's index")
    finally:
        await bob.stop()
        await alice.stop()


async def test_ch1_display_names_are_checked(tmp_path: Path) -> None:
    alice = await Person(tmp_path, "alice").start()
    try:
        for bad in ("", "   ", "x" * 65, "bell\x07"):
            with pytest.raises(InvalidName):
                await alice.c().set_name(bad)
        assert alice.c().name() is None  # nothing stored
    finally:
        await alice.stop()


async def test_verification_is_kept_and_files_travel_encrypted(tmp_path: Path) -> None:
    alice, bob = await _pair(tmp_path)
    try:
        group = await alice.c().client.create_group("files", history=True)
        assert alice.node is not None
        await key_packages_visible(alice.node, bob.key)
        async with alice.c().lock:
            await group.add(bob.key)
        members = await alice.c().members(group)
        assert [(m.key, m.verified) for m in members if m.key == bob.key] == [(bob.key, False)]
        assert alice.c().verify(bob.key) == bob.c().safety_number(alice.key)
        assert alice.c().is_verified(bob.key)

        with pytest.raises(FileRefused, match="is not a regular file"):  # CH3
            await alice.c().send_file(group, tmp_path / "missing.bin")
        payload = bytes(range(256)) * 300  # 76 800 bytes: three pieces
        source = tmp_path / "photo.bin"
        source.write_bytes(payload)
        file_id = await alice.c().send_file(group, source)

        async def arrived() -> bool:
            groups = await bob.c().client.all_groups()
            return bool(groups) and [f.received for f in bob.c().files(groups[0])] == [3]

        await eventually(arrived, what="the file's pieces at bob")
        bob_group = (await bob.c().client.all_groups())[0]
        out = tmp_path / "downloads"
        out.mkdir()
        saved = bob.c().save_file(bob_group, file_id, out)
        assert saved == out / "photo.bin" and saved.read_bytes() == payload
        with pytest.raises(FileIncomplete):  # CH4: unknown file, nothing written
            bob.c().save_file(bob_group, "00" * 34, tmp_path / "nothing.bin")
        assert not (tmp_path / "nothing.bin").exists()
    finally:
        await bob.stop()
        await alice.stop()


def test_delivered_heights_only_go_up_and_survive_a_reopen(tmp_path: Path) -> None:
    from node_adapter.chat_store import ChatStore

    store = ChatStore(tmp_path / "chat.sqlite3")
    assert store.raise_delivered({1: 3, 2: 1}) is True
    assert store.raise_delivered({1: 2}) is False  # a session that knows less does not lower it
    assert store.raise_delivered({1: 3, 2: 1}) is False
    assert store.raise_delivered({2: 5}) is True
    store.close()
    assert ChatStore(tmp_path / "chat.sqlite3").delivered() == {1: 3, 2: 5}


async def test_the_index_catches_up_from_its_cursor_and_the_timeline_reads_only_the_newest(tmp_path: Path) -> None:
    """What the client stored while no chat ran is indexed at the next start, and only that: rows before
    the cursor are not read again. The timeline reads the newest `limit` messages from the index."""
    from node_adapter import Client, EmbeddedNode
    from node_adapter.chat import Chat
    from node_adapter.chat_store import ChatStore

    key_pair = KeyPair.generate()
    async with EmbeddedNode(tmp_path) as node, Client(node, key_pair) as client:
        group = await client.create_group("log")
        async with Chat(client) as chat:
            first = await group.send("one")
            await group.send("two")

            async def indexed() -> bool:
                return [m.text for m in await chat.messages(group)] == ["one", "two"]

            await eventually(indexed, what="the live index")
        cursor = ChatStore(chat.path).indexed_up_to()
        assert cursor > 0
        # Without a chat running: new messages, an edit and a reply to an old message.
        await group.send("three")
        await group.edit(first, "one, edited")
        await group.send("four", reply_to=first)
        # A row the cursor has passed, changed behind the chat's back, is not read again at start.
        store = ChatStore(chat.path)
        store.unindex([(await group.messages())[1].id])  # "two"
        store.close()
        async with Chat(client) as chat:
            texts = [m.text for m in await chat.messages(group)]
            assert texts == ["one, edited", "three", "four"]
            assert chat.store.indexed_up_to() > cursor
            timeline = await chat.timeline(group, limit=2)
            assert [m.text for m in timeline.messages] == ["three", "four"]
            assert timeline.older == 1
            assert timeline.quoted[first].text == "one, edited" and timeline.quoted[first].edited
            assert timeline.messages[1].state == "sent"


async def test_a_client_that_syncs_in_the_background_starts_first_and_sweeps_after(tmp_path: Path) -> None:
    """`sync_in_background` (what `panda chat` uses): `start` returns before the sweep; the sweep then
    finds what reached the node while the client was stopped."""
    from node_adapter import Client, EmbeddedNode

    alice_keys, bob_keys = KeyPair.generate(), KeyPair.generate()
    async with EmbeddedNode(tmp_path) as node, Client(node, alice_keys) as alice:
        async with Client(node, bob_keys) as bob:
            group = await alice.create_group("team")
            await group.add(bob_keys.public_key, Level.WRITE)

            async def joined() -> bool:
                return len(await bob.groups()) == 1

            await eventually(joined, what="bob joins")
        await group.send("while bob was away")
        async with Client(node, bob_keys, sync_in_background=True) as bob:
            assert not bob.synced.is_set()  # start did not sweep
            assert [m.text for m in await (await bob.groups())[0].messages()] == []
            await asyncio.wait_for(bob.synced.wait(), 20)
            assert [m.text for m in await (await bob.groups())[0].messages()] == ["while bob was away"]
