"""Snapshot tests of the main screens of `panda chat` at 80x24 and 120x40 (pytest-textual-snapshot's SVG
format; `pytest tests/tui/test_snapshots.py --snapshot-update` writes them again after an intended change,
then look at the .svg files under `__snapshots__/` before committing them).

The screens: the chat list + timeline + members, the help, the command palette and a confirmation (the
safety number of /verify). Alice and Bob are real embedded nodes replicating over 127.0.0.1. Everything on
screen is fixed: the identity keys (so fingerprints, safety numbers and document ids are), display names,
the clock of the last sync and the time zone; the story is told one step at a time, each waited for, so
Lamport clocks and log positions are the same on every run; Alice's messages are shown once "delivered"
(the state they settle in).

`snap_compare` itself cannot be used: it runs the app in an event loop of its own, and the nodes, clients
and chats must live in the loop they were started in. The screenshot is taken as it does (after pending
animations and a refresh) and compared with its SVG extension.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_textual_snapshot import SVGImageExtension  # type: ignore[import-untyped]
from syrupy.assertion import SnapshotAssertion
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from node_adapter import Group
from p2panda.identity import KeyPair
from tests.node_adapter.clients import key_packages_visible
from tests.tui.people import Person, eventually, timeline_text, type_line
from tui.app import ChatApp
from tui.chat_header import ChatHeader
from tui.chat_list import ChatList
from tui.composer import Composer
from tui.confirm_screen import ConfirmScreen
from tui.member_list import MemberList

pytestmark = pytest.mark.timeout(240)

ALICE = KeyPair.from_private_key_hex("a1" * 32)
BOB = KeyPair.from_private_key_hex("b0" * 32)
SYNCED = 1_767_225_600.0 + 9 * 3600 + 41 * 60 + 5  # 2026-01-01 09:41:05 UTC: "last sync 09:41:05"
SIZES = [(80, 24), (120, 40)]


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The header formats the last sync in local time: the same zone on every machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def _settle(pilot: Pilot[None], check: Callable[[], bool], what: str) -> None:
    async def done() -> bool:
        await pilot.pause(0.05)
        return check()

    try:
        await eventually(done, timeout=60.0, what=what)
    except AssertionError as exc:  # say what was on screen instead
        raise AssertionError(f"{exc}; the screen:\n{_text(pilot.app)}") from exc


def _text(app: object) -> str:
    assert isinstance(app, ChatApp)
    lists = app.query_one(ChatList)
    chats = [str(lists.get_option_at_index(i).prompt) for i in range(lists.option_count)]
    header = str(app.query_one(ChatHeader).render())
    return f"{header}\n{chats}\n{timeline_text(app)}\n{app.query_one(MemberList).render()}"


async def _joined(person: Person, group_id: str) -> Group:
    async def found() -> Group | None:
        return next((g for g in await person.c().client.groups() if g.id == group_id), None)

    return await eventually(found, what=f"{person.name} joins")


async def _arrived(group: Group, text: str) -> None:
    async def there() -> bool:
        return any(m.text == text for m in await group.messages())

    await eventually(there, what=f"{text!r} arrives")


async def _story(alice: Person, bob: Person) -> None:
    """Two chats with Bob; in "team" a short conversation with a reply and an edit, in "design" one message
    Alice has not read. Each step waits for the one before it to arrive on the other side."""
    assert alice.node is not None
    await key_packages_visible(alice.node, bob.key)
    # The names are set once both chats exist: a chat writes its profile into a group it joins when it has
    # a name, and that write, racing the next group's creation, would change the next group's id (and so
    # the order of the chat list, which is by id).
    groups: dict[str, tuple[Group, Group]] = {}
    for name in ("team", "design"):
        group = await alice.c().client.create_group(name)
        async with alice.c().lock:
            await group.add(bob.key)
        groups[name] = (group, await _joined(bob, group.id))
    await alice.c().set_name("alice")
    await bob.c().set_name("bob")
    alice.c().set_setting("open", groups["team"][0].id)  # the app opens the chat open last: team
    team, bobs_team = groups["team"]
    first = await team.send("The draft is in the shared folder, page 3 has the new numbers.")
    await _arrived(bobs_team, "The draft is in the shared folder, page 3 has the new numbers.")
    await bobs_team.send("Thanks! Reading it now.", reply_to=first)
    await _arrived(team, "Thanks! Reading it now.")
    meeting = await team.send("Shall we meet at 3?")
    await _arrived(bobs_team, "Shall we meet at 3?")
    await team.edit(meeting, "Shall we meet at 4?")
    await bobs_team.send("4 works for me.")
    await _arrived(team, "4 works for me.")
    design, bobs_design = groups["design"]
    await bobs_design.send("New logo sketches are up.")
    await _arrived(design, "New logo sketches are up.")


def _screenshot(app: ChatApp) -> str:
    return app.export_screenshot(title=app.title, simplify=True)


async def _steady(pilot: Pilot[None]) -> None:
    """As snap_compare: after pending animations and one more refresh of everything."""
    pilot.app.refresh(layout=True)
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


async def _screens(alice: Person, width: int, height: int, svg: SnapshotAssertion) -> dict[str, bool]:
    """The main screen, the safety number dialog, the palette and the help at one size: name -> matches."""
    size = f"{width}x{height}"
    results: dict[str, bool] = {}
    app = alice.app()
    async with app.run_test(size=(width, height)) as pilot:
        composer = app.query_one(Composer)
        composer.cursor_blink = False
        header = app.query_one(ChatHeader)
        chats = app.query_one(ChatList)
        await _settle(
            pilot,
            lambda: (
                "alice: Shall we meet at 4? (edited) · delivered" in timeline_text(app)
                and "bob: 4 works for me." in timeline_text(app)
                and chats.option_count == 2
                and "design 1" in [str(chats.get_option_at_index(i).prompt) for i in range(2)]
                and "bob" in str(app.query_one(MemberList).render())
                and "online (1 peer) · last sync 09:41:05" in str(header.render())
                and timeline_text(app).count("· delivered") == 2
            ),
            "the team chat, all delivered",
        )
        app.mark_dirty()  # once more, laid out at this size
        await _steady(pilot)
        results[f"main-{size}"] = svg(name=f"main-{size}") == _screenshot(app)

        await type_line(pilot, f"/verify {BOB.public_key.hex()}")
        await _settle(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the safety number")
        await _steady(pilot)
        results[f"verify-{size}"] = svg(name=f"verify-{size}") == _screenshot(app)
        await pilot.press("n")
        await _settle(pilot, lambda: not isinstance(app.screen, ConfirmScreen), "the dialog closes")

        await pilot.press("ctrl+p", *"ver")

        def hits() -> bool:
            if not isinstance(app.screen, CommandPalette):
                return False
            options = app.screen.query_one(OptionList)
            return options.option_count > 0 and "/verify" in str(options.get_option_at_index(0).prompt)

        await _settle(pilot, hits, "the palette's hits")
        for palette_input in app.screen.query(Input):
            palette_input.cursor_blink = False
        await _steady(pilot)
        results[f"palette-{size}"] = svg(name=f"palette-{size}") == _screenshot(app)
        await pilot.press("escape")
        await _settle(pilot, lambda: not isinstance(app.screen, CommandPalette), "the palette closes")

        composer.focus()
        await pilot.press("f1")
        await _settle(pilot, lambda: "sends a line starting with /" in timeline_text(app), "the help")
        await _steady(pilot)
        results[f"help-{size}"] = svg(name=f"help-{size}") == _screenshot(app)
    return results


async def test_snapshots_of_the_main_screens(tmp_path: Path, utc: None, snapshot: SnapshotAssertion) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    alice = await Person(tmp_path, "alice", key_pair=ALICE, clock=lambda: SYNCED).start()
    bob = await Person(tmp_path, "bob", peers=(alice.address,), key_pair=BOB, clock=lambda: SYNCED).start()
    results: dict[str, bool] = {}
    try:
        await _story(alice, bob)
        for width, height in SIZES:
            results |= await _screens(alice, width, height, svg)
    finally:
        await bob.stop()
        await alice.stop()
    # Every screen compared before failing, so one run shows every changed snapshot.
    assert results == dict.fromkeys(results, True)
    assert len(results) == 8
