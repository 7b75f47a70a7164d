"""Pilot tests of `panda chat` against real clients on real embedded nodes (tmp_path, 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tui.people import Person, eventually, timeline_text, type_line

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
