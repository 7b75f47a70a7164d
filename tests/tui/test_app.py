"""Pilot tests of `panda chat` against real clients on real embedded nodes (tmp_path, 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from node_adapter import Group
from p2panda.ids import DocumentId
from p2panda.operation.value import OperationValue, Relation
from secret_group.errors import NotMember
from secret_group.schemas import CHAT_PROFILE_SCHEMA, ENVELOPE_SCHEMA
from tests.node_adapter.clients import key_packages_visible
from tests.tui.people import Person, eventually, timeline_text, type_line
from tui.app import ChatApp
from tui.chat_header import ChatHeader
from tui.chat_list import ChatList
from tui.composer import Composer
from tui.confirm_screen import ConfirmScreen
from tui.member_list import MemberList
from tui.messages import LineSubmitted
from tui.timeline import TimelineView

pytestmark = pytest.mark.timeout(120)


async def test_new_chat_and_a_sent_message_with_its_state(tmp_path: Path) -> None:
    alice = await Person(tmp_path, "alice").start()
    try:
        app = alice.app()
        async with app.run_test(size=(120, 40)) as pilot:
            await type_line(pilot, "/new team")

            async def opened() -> bool:
                await pilot.pause()
                return app.current is not None

            await eventually(opened, what="the new chat opens")
            await type_line(pilot, "hello world")

            async def shown() -> bool:
                await pilot.pause()
                return "alice: hello world · sent" in timeline_text(app)

            await eventually(shown, what="the message with its state")
            assert app.query_one("#composer").text == ""  # type: ignore[attr-defined]
    finally:
        await alice.stop()


async def _settle(pilot: Pilot[None], check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    async def done() -> bool:
        await pilot.pause(0.05)
        return check()

    await eventually(done, timeout=timeout, what=what)


async def test_keys_typed_before_a_submitted_line_is_handled_stay_in_the_composer(tmp_path: Path) -> None:
    """Enter posts the line to the app; keys typed before the app handles it (a fast typist, a paste, tmux
    send-keys) land in the composer first. The sent line is taken off the front and what followed stays:
    it was once left in front of the next message ("twowritten offline three")."""
    alice = await Person(tmp_path, "alice").start()
    try:
        app = alice.app()
        async with app.run_test(size=(120, 40)) as pilot:
            await type_line(pilot, "/new team")
            await _settle(pilot, lambda: app.current is not None, "the chat opens")
            composer = app.query_one(Composer)
            composer.load_text("two")
            composer.move_cursor(composer.document.end)
            composer.post_message(LineSubmitted("two"))  # what Enter does
            composer.insert("three")  # typed before the app handles the message
            await _settle(pilot, lambda: "alice: two · sent" in timeline_text(app), "two is sent")
            assert composer.text == "three"
    finally:
        await alice.stop()


async def _pair(tmp_path: Path) -> tuple[Person, Person]:
    alice = await Person(tmp_path, "alice").start()
    bob = await Person(tmp_path, "bob", peers=(alice.address,)).start()
    await bob.c().set_name("bob")
    return alice, bob


async def test_drafts_are_kept_per_chat_and_esc_never_destroys_them(tmp_path: Path) -> None:
    alice = await Person(tmp_path, "alice").start()
    try:
        app = alice.app()
        async with app.run_test(size=(120, 40)) as pilot:
            await type_line(pilot, "/new one")
            await _settle(pilot, lambda: app.current is not None, "chat one")
            first = app.current
            await type_line(pilot, "/new two")
            await _settle(pilot, lambda: app.current not in (None, first), "chat two")
            composer = app.query_one(Composer)
            composer.focus()
            await pilot.press("h", "a", "l", "f", "shift+enter", "d", "o", "n", "e")
            assert composer.text == "half\ndone"  # multi-line
            await pilot.press("escape")
            assert composer.text == "half\ndone"
            assert app.focused is app.query_one(TimelineView)
            # Ctrl+K: the switcher (the composer keeps its text, so /open would be typed into the draft).
            await pilot.press("ctrl+k", "o", "n", "e")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await _settle(pilot, lambda: app.current == first, "back in chat one")
            assert composer.text == ""
            await pilot.press("ctrl+k", "t", "w", "o")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await _settle(pilot, lambda: composer.text == "half\ndone", "the draft of chat two")
        # The draft survives a restart of the app (stored in the chat state).
        assert alice.c().draft(app.current or "") == "half\ndone"
    finally:
        await alice.stop()


async def test_unread_counts_mentions_and_notifications(tmp_path: Path) -> None:
    alice, bob = await _pair(tmp_path)
    try:
        app = alice.app()
        async with app.run_test(size=(120, 40), notifications=True) as pilot:
            await type_line(pilot, "/new team")
            await _settle(pilot, lambda: app.current is not None, "team")
            team = app.current
            await type_line(pilot, f"/add {bob.key.hex()}")
            bobs = await bob_group(bob, team or "")
            await type_line(pilot, "/new other")
            await _settle(pilot, lambda: app.current not in (None, team), "other open")
            await bobs.send("plain message")
            await bobs.send("hey @alice look")
            await _settle(pilot, lambda: alice.c().unread(team or "") == (2, 1), "two unread, one mention")
            await _settle(pilot, lambda: "team @1" in chat_list_text(app), "the mention badge")
            await _settle(pilot, lambda: any("mentioned" in n.message for n in app._notifications), "the toast")
            await type_line(pilot, "/open team")
            await _settle(pilot, lambda: "bob: hey @alice look" in timeline_text(app), "the messages")
            await _settle(pilot, lambda: alice.c().unread(team or "") == (0, 0), "read once open")
            # Switched off: no toast for the next mention.
            await type_line(pilot, "/notify off")
            await type_line(pilot, "/open other")
            await _settle(pilot, lambda: app.current != team, "other open")
            count = len(app._notifications)
            await bobs.send("@alice again")
            await _settle(pilot, lambda: alice.c().unread(team or "") == (1, 1), "the second mention arrived")
            await pilot.pause(0.2)
            assert len(app._notifications) == count
    finally:
        await bob.stop()
        await alice.stop()


async def test_members_header_verification_and_verbs(tmp_path: Path) -> None:
    alice, bob = await _pair(tmp_path)
    try:
        app = alice.app()
        async with app.run_test(size=(120, 40)) as pilot:
            await type_line(pilot, "/new team")
            await _settle(pilot, lambda: app.current is not None, "team")
            await type_line(pilot, f"/add {bob.key.hex()} manage")
            bobs = await bob_group(bob, app.current or "")
            header = app.query_one(ChatHeader)
            await _settle(pilot, lambda: "epoch 1 · 2 can read · 1 unverified" in str(header.render()), "header")
            assert "ratchet" in str(header.render())
            members = str(app.query_one(MemberList).render())
            await _settle(pilot, lambda: "bob" in str(app.query_one(MemberList).render()), "bob's name")
            members = str(app.query_one(MemberList).render())
            assert "manage · " + bob.key.hex()[:4] in members and "! unverified: /verify KEY" in members
            # Verify: the safety number is shown, confirming marks Bob verified.
            await type_line(pilot, f"/verify {bob.key.hex()}")
            await _settle(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the safety number screen")
            assert alice.c().safety_number(bob.key) == bob.c().safety_number(alice.key)
            await pilot.press("y")
            await _settle(pilot, lambda: "1 unverified" not in str(header.render()), "bob verified")
            assert alice.c().is_verified(bob.key)

            # Reply, edit and delete by selecting a message, then acting.
            await bobs.send("question?")
            await _settle(pilot, lambda: "bob: question?" in timeline_text(app), "bob's question")
            await pilot.press("escape")  # to the timeline: the newest message is selected
            await pilot.press("r")
            await type_line(pilot, "answer")
            await _settle(pilot, lambda: "↪ bob: question?" in timeline_text(app), "the quoted reply")
            await pilot.press("escape")
            await pilot.press("e")
            composer = app.query_one(Composer)
            assert composer.text == "answer"
            await type_line(pilot, "!")
            await _settle(pilot, lambda: "alice: answer! (edited)" in timeline_text(app), "the edit")

            async def bob_sees_edit() -> bool:
                return any(m.text == "answer!" and m.edited for m in await bobs.messages())

            await eventually(bob_sees_edit, what="the edit at bob")
            await pilot.press("escape")
            await pilot.press("d")
            await _settle(pilot, lambda: "answer!" not in timeline_text(app), "the delete")

            async def bob_sees_delete() -> bool:
                return [m.text for m in await bobs.messages()] == ["question?"]

            await eventually(bob_sees_delete, what="the delete at bob")
    finally:
        await bob.stop()
        await alice.stop()


async def test_errors_are_notices_search_whoami_help_and_network(tmp_path: Path) -> None:
    alice = await Person(tmp_path, "alice").start()
    bob: Person | None = None
    try:
        app = alice.app()
        async with app.run_test(size=(80, 24)) as pilot:
            # Offline is a normal state: said in the header, and writing works (to the local node).
            await _settle(pilot, lambda: "offline (0 peers)" in str(app.query_one(ChatHeader).render()), "offline")
            bob = await Person(tmp_path, "bob", peers=(alice.address,)).start()
            await _settle(pilot, lambda: "online (1 peer)" in str(app.query_one(ChatHeader).render()), "online")
            await type_line(pilot, "/add nothex")
            await _settle(pilot, lambda: "error: open or create a chat first" in timeline_text(app), "no chat")
            await type_line(pilot, "/new solo")
            await _settle(pilot, lambda: app.current is not None, "solo")
            await type_line(pilot, "written while offline")
            # Bob's node is connected by now and takes every entry: "sent" (on alice's node) becomes
            # "delivered" (a peer node has it).
            await _settle(pilot, lambda: "written while offline · delivered" in timeline_text(app), "delivered")
            await type_line(pilot, "/new team")
            await _settle(pilot, lambda: app.current is not None, "team")
            await type_line(pilot, "/add nothex")
            await _settle(pilot, lambda: "error: " in timeline_text(app) and "nothex" in timeline_text(app), "bad key")
            await type_line(pilot, "/frob")
            await _settle(pilot, lambda: "unknown command /frob" in timeline_text(app), "unknown command")
            assert app.query_one(Composer).text == "/frob"  # kept, to be corrected
            app.query_one(Composer).clear()
            assert (
                "Traceback" not in (alice.data_dir / "chat.log").read_text()
                if (alice.data_dir / "chat.log").exists()
                else True
            )
            await type_line(pilot, "where is the fox")
            await type_line(pilot, "/search fox")
            await _settle(pilot, lambda: "alice: where is the [fox]" in timeline_text(app), "the search hit")
            await type_line(pilot, "/whoami")
            await _settle(pilot, lambda: alice.key.hex() in timeline_text(app), "whoami")
            await type_line(pilot, "/help")
            await _settle(pilot, lambda: "/verify PUBLIC_KEY" in timeline_text(app), "help")
            assert "Ctrl+K" in timeline_text(app)
    finally:
        if bob is not None:
            await bob.stop()
        await alice.stop()


async def test_history_before_joining_is_marked_unavailable(tmp_path: Path) -> None:
    alice, bob = await _pair(tmp_path)
    try:
        group = await alice.c().client.create_group("team")
        await group.send("before bob")
        assert alice.node is not None
        await key_packages_visible(alice.node, bob.key)
        async with alice.c().lock:
            await group.add(bob.key)
        await group.send("after bob")
        bobs = await bob_group(bob, group.id)

        async def bob_reads() -> bool:
            return [m.text for m in await bobs.messages()] == ["after bob"]

        await eventually(bob_reads, what="bob reads the message after his join")
        app = bob.app()
        async with app.run_test(size=(120, 40)) as pilot:
            await _settle(pilot, lambda: f"{alice.key.hex()[:8]}: after bob" in timeline_text(app), "msgs")
            assert "from before you joined are not available" in timeline_text(app)
            assert "before bob" not in timeline_text(app)
    finally:
        await bob.stop()
        await alice.stop()


async def test_send_file_with_confirmation_and_save(tmp_path: Path) -> None:
    alice = await Person(tmp_path, "alice").start()
    try:
        source = tmp_path / "notes.txt"
        source.write_bytes(b"secret notes\n" * 100)
        app = alice.app()
        async with app.run_test(size=(120, 40)) as pilot:
            await type_line(pilot, "/new files")
            await _settle(pilot, lambda: app.current is not None, "chat")
            await type_line(pilot, f"/send-file {source}")
            await _settle(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
            assert "notes.txt (1300 bytes)" in str(app.screen.query_one(Static).render())
            await pilot.press("y")
            await _settle(pilot, lambda: "📎 notes.txt" in timeline_text(app), "the file in the timeline")
            await pilot.press("escape")  # composer -> timeline, the file selected
            await pilot.press("s")
            saved = alice.data_dir / "downloads" / "notes.txt"
            await _settle(pilot, saved.exists, "the saved file")
            assert saved.read_bytes() == source.read_bytes()
    finally:
        await alice.stop()


def chat_list_text(app: ChatApp) -> str:
    view = app.query_one(ChatList)
    return "\n".join(str(view.get_option_at_index(i).prompt) for i in range(view.option_count))


async def bob_group(bob: Person, group_id: str) -> Group:
    async def joined() -> Group | None:
        groups = await bob.c().client.groups()
        return next((g for g in groups if g.id == group_id), None)

    return await eventually(joined, what="bob joins")


async def test_command_palette_runs_and_prefills_slash_commands(tmp_path: Path) -> None:
    alice = await Person(tmp_path, "alice").start()
    try:
        app = alice.app()
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("ctrl+p", *"whoami")
            await pilot.pause(0.3)
            await pilot.press("enter")  # no arguments: runs at once
            await _settle(pilot, lambda: alice.key.hex() in timeline_text(app), "/whoami from the palette")
            await pilot.press("ctrl+p", *"/new")
            await pilot.pause(0.3)
            await pilot.press("enter")  # arguments: the composer gets "/new "
            await _settle(pilot, lambda: app.query_one(Composer).text == "/new ", "the prefilled command")
            await pilot.press(*"team", "enter")
            await _settle(pilot, lambda: app.current is not None, "the chat made from the palette")
    finally:
        await alice.stop()


async def test_long_history_renders_the_newest_window_and_loads_older_on_demand(tmp_path: Path) -> None:
    alice = await Person(tmp_path, "alice").start()
    try:
        group = await alice.c().client.create_group("long")
        for i in range(7):
            await group.send(f"old message {i}")
        app = alice.app()
        async with app.run_test(size=(80, 24)) as pilot:
            view = app.query_one(TimelineView)
            view.window = 3  # as WINDOW (500) is to a 10 000-message chat
            app.mark_dirty()
            await _settle(pilot, lambda: "↑ 4 older messages" in timeline_text(app), "older line")
            text = timeline_text(app)
            assert "old message 6" in text and "old message 4" in text and "old message 3" not in text
            assert view.option_count == 1 + 3 + len(app.notices.get(group.id, []))  # only those are rendered
            view.focus()
            view.highlighted = 0
            await pilot.press("enter")  # loads the next window (WINDOW more: all of them here)
            await _settle(pilot, lambda: "old message 0" in timeline_text(app), "loaded the older ones")
            assert "older messages" not in timeline_text(app)
    finally:
        await alice.stop()


async def test_leave_asks_a_manager_to_remove_you_and_the_others_see_it(tmp_path: Path) -> None:
    """CH6 through the app: Bob types /leave; Alice's chat (the manager that commits) removes him, her
    timeline says he left, and Bob's client shows the chat no more and cannot send to it. Alice, the only
    manager, cannot leave."""
    alice, bob = await _pair(tmp_path)
    try:
        group = await alice.c().client.create_group("team")
        assert alice.node is not None
        await key_packages_visible(alice.node, bob.key)
        async with alice.c().lock:
            await group.add(bob.key)
        bobs = await bob_group(bob, group.id)
        app = bob.app()
        async with app.run_test(size=(120, 40)) as pilot:
            await _settle(pilot, lambda: app.current == group.id, "bob's app opens team")
            await type_line(pilot, "/leave")
            await _settle(pilot, lambda: app.current is None, "bob's app closes team")

            async def removed() -> bool:
                return not bobs.is_member and bob.key not in await group.members()

            await eventually(removed, what="alice's chat removes bob")
            await _settle(pilot, lambda: app.query_one(ChatList).option_count == 0, "bob's list without team")
        with pytest.raises(NotMember):
            await bobs.send("after leaving")
        app = alice.app()
        async with app.run_test(size=(120, 40)) as pilot:
            await _settle(pilot, lambda: "bob left the chat" in timeline_text(app), "alice sees bob leave")
            await type_line(pilot, "/leave")
            await _settle(pilot, lambda: "you are the only manager of 'team'" in timeline_text(app), "CannotLeave")
            assert app.current == group.id and group.is_member
    finally:
        await bob.stop()
        await alice.stop()


async def test_an_envelope_that_cannot_be_decrypted_shows_a_placeholder_with_the_reason(tmp_path: Path) -> None:
    alice, bob = await _pair(tmp_path)
    try:
        group = await alice.c().client.create_group("team")
        assert alice.node is not None and bob.node is not None
        await key_packages_visible(alice.node, bob.key)
        async with alice.c().lock:
            await group.add(bob.key)
        await bob_group(bob, group.id)
        fields: dict[str, OperationValue] = {
            "group": Relation(DocumentId.from_hex(group.id)),
            "epoch": group.epoch,
            "ciphertext": b"not an MLS message",
        }
        async with bob.c().lock:  # a member's envelope whose ciphertext is garbage
            await bob.node.create(bob.key_pair, ENVELOPE_SCHEMA, fields)
        app = alice.app()
        async with app.run_test(size=(120, 40)) as pilot:
            await _settle(pilot, lambda: "⚠ a message could not be decrypted: " in timeline_text(app), "placeholder")
            line = next(x for x in timeline_text(app).splitlines() if "could not be decrypted" in x)
            assert line.endswith(
                "could not be decrypted: MalformedMessage: message does not decode: UnknownValue(29728)"
            )
    finally:
        await bob.stop()
        await alice.stop()


async def test_ch7_a_chat_you_left_stays_read_only_before_the_removal_arrives(tmp_path: Path) -> None:
    """Bob leaves while Alice (the manager that would commit his removal) is away, so he is still an MLS
    member. /open shows the chat again, read-only: his messages, verbs, /add and his profile stay out of it,
    and what he typed stays in the composer."""
    alice, bob = await _pair(tmp_path)
    alice_running = True
    try:
        group = await alice.c().client.create_group("team")
        assert alice.node is not None
        await key_packages_visible(alice.node, bob.key)
        async with alice.c().lock:
            await group.add(bob.key)
        bobs = await bob_group(bob, group.id)
        await alice.stop()  # the removal cannot arrive
        alice_running = False
        app = bob.app()
        async with app.run_test(size=(120, 40)) as pilot:
            await _settle(pilot, lambda: app.current == group.id, "bob's app opens team")
            await type_line(pilot, "before leaving")
            await _settle(pilot, lambda: "bob: before leaving · sent" in timeline_text(app), "a message (control)")
            await type_line(pilot, "/leave")
            await _settle(pilot, lambda: app.current is None, "team is closed")
            await _settle(pilot, lambda: app.query_one(ChatList).option_count == 0, "and hidden")
            await type_line(pilot, "/open team")
            await _settle(pilot, lambda: "you left team: shown read-only" in timeline_text(app), "read-only notice")
            assert "team (left)" in chat_list_text(app)
            assert "you left: read-only" in str(app.query_one(ChatHeader).render())
            assert "bob: before leaving" in timeline_text(app)  # what was said can still be read

            await type_line(pilot, "after leaving")
            await _settle(pilot, lambda: "error: you left chat 'team': it is read-only" in timeline_text(app), "CH7")
            assert app.query_one(Composer).text == "after leaving"  # refused, not lost
            app.query_one(Composer).clear()
            await pilot.press("escape", "e")  # the newest own message selected: edit is refused too
            await _settle(pilot, lambda: timeline_text(app).count("error: you left chat") == 2, "the verb refused")
            assert app.query_one(Composer).verb is None
            await type_line(pilot, f"/add {alice.key.hex()}")
            await _settle(pilot, lambda: timeline_text(app).count("error: you left chat") == 3, "/add refused")
            await type_line(pilot, "/name robert")
            await _settle(pilot, lambda: "your display name is now robert" in timeline_text(app), "renamed")
        assert bobs.is_member  # the removal never arrived: only CH7 kept these out
        assert [m.text for m in await bobs.messages()] == ["before leaving"]
        profiles = [d for d in await bobs.documents(CHAT_PROFILE_SCHEMA) if d.owner == bob.key]
        assert [(d.fields or {}).get("name") for d in profiles] == ["bob"]
    finally:
        await bob.stop()
        if alice_running:
            await alice.stop()


async def test_the_app_opens_the_chat_that_was_open_when_it_stopped(tmp_path: Path) -> None:
    alice = await Person(tmp_path, "alice").start()
    try:
        first = await alice.c().client.create_group("one")
        second = await alice.c().client.create_group("two")
        app = alice.app()
        async with app.run_test(size=(80, 24)) as pilot:
            await _settle(pilot, lambda: app.current is not None, "a chat opens")
            other = second.id if app.current == first.id else first.id
            await type_line(pilot, f"/open {'two' if other == second.id else 'one'}")
            await _settle(pilot, lambda: app.current == other, "the other chat")
        app = alice.app()
        async with app.run_test(size=(80, 24)) as pilot:
            await _settle(pilot, lambda: app.current is not None, "a chat opens")
            assert app.current == other
    finally:
        await alice.stop()
