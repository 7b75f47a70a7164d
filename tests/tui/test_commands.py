"""Slash-command parsing (sans-IO): SC1-SC3."""

from __future__ import annotations

import pytest

from tui.commands import COMMANDS, Command, parse_line
from tui.errors import BadArguments, UnknownCommand

KEY = "ab" * 32


def test_sc3_plain_text_is_a_message_and_double_slash_escapes() -> None:
    assert parse_line("hello there") == "hello there"
    assert parse_line("//shrug") == "/shrug"
    assert parse_line("line one\nline two") == "line one\nline two"


def test_the_exact_commands_of_the_issue_parse() -> None:
    assert parse_line("/new team chat") == Command("new", ("team chat",))
    assert parse_line(f"/add {KEY}") == Command("add", (KEY,))
    assert parse_line(f"/add {KEY} manage") == Command("add", (KEY, "manage"))
    assert parse_line(f"/remove {KEY}") == Command("remove", (KEY,))
    assert parse_line("/open team chat") == Command("open", ("team chat",))
    assert parse_line("/leave") == Command("leave", ())
    assert parse_line("/name Ada Lovelace") == Command("name", ("Ada Lovelace",))
    assert parse_line(f"/verify {KEY}") == Command("verify", (KEY,))
    assert parse_line('/search "quoted" NEAR words') == Command("search", ('"quoted" NEAR words',))
    assert parse_line("/help") == Command("help", ())
    assert parse_line("/whoami") == Command("whoami", ())
    assert {"new", "add", "remove", "open", "leave", "name", "verify", "search", "help", "whoami"} <= set(COMMANDS)


def test_sc1_unknown_command_is_named() -> None:
    with pytest.raises(UnknownCommand, match="/frobnicate"):
        parse_line("/frobnicate now")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("/add", "usage: /add PUBLIC_KEY"),
        (f"/add {KEY} owner", "level 'owner' is not one of read, write, manage"),
        (f"/add {KEY} write extra", "usage: /add"),
        ("/leave now", "usage: /leave"),
        ("/new", "usage: /new NAME"),
        ("/notify maybe", "'maybe'"),
    ],
)
def test_sc2_bad_arguments_are_named(line: str, message: str) -> None:
    with pytest.raises(BadArguments, match=message.replace("(", r"\(")):
        parse_line(line)
