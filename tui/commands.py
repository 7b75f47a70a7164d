"""Slash commands: what the user types after `/`, parsed into a `Command` (sans-IO: no widget, no node).

Checks (named in the tests):
- SC1 the command exists (`UnknownCommand` names it);
- SC2 its arguments are there, not too many, and valid: a level is read, write or manage
  (`BadArguments` names the offending text);
- SC3 a line that does not start with `/` is a message, and `//text` sends `/text` as a message.
"""

from __future__ import annotations

from dataclasses import dataclass

from keygroups import Level
from tui.errors import BadArguments, UnknownCommand

__all__ = ["COMMANDS", "Command", "CommandSpec", "parse_line", "LEVELS"]

LEVELS = {"read": Level.READ, "write": Level.WRITE, "manage": Level.MANAGE}


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    usage: str  # the arguments, as shown in /help
    help: str
    min_args: int
    max_args: int
    rest: bool = False  # the last argument takes the rest of the line (names, search text, paths)


COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        CommandSpec("new", "NAME", "create a chat and open it", 1, 1, rest=True),
        CommandSpec("add", "PUBLIC_KEY [read|write|manage]", "give a key access to this chat (default write)", 1, 2),
        CommandSpec("remove", "PUBLIC_KEY", "remove a member from this chat", 1, 1),
        CommandSpec("open", "NAME", "switch to a chat by name", 1, 1, rest=True),
        CommandSpec("leave", "", "leave this chat: a manager removes you", 0, 0),
        CommandSpec("name", "DISPLAY_NAME", "set your display name (in every chat)", 1, 1, rest=True),
        CommandSpec("verify", "PUBLIC_KEY", "compare the safety number with a member and mark them verified", 1, 1),
        CommandSpec("search", "TEXT", "search the decrypted history kept on this machine", 1, 1, rest=True),
        CommandSpec("send-file", "PATH", "send a file to this chat (encrypted)", 1, 1, rest=True),
        CommandSpec("save", "[DIRECTORY]", "save the selected file (default: the data directory's downloads)", 0, 1),
        CommandSpec("mute", "", "mute this chat: unread messages counted, no notifications", 0, 0),
        CommandSpec("unmute", "", "unmute this chat", 0, 0),
        CommandSpec("notify", "on|off", "bell and toast on mentions", 1, 1),
        CommandSpec("theme", "[NAME]", "change the theme (without a name: choose one)", 0, 1),
        CommandSpec("whoami", "", "show your public key", 0, 0),
        CommandSpec("help", "", "commands and keys", 0, 0),
    )
}


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: tuple[str, ...]


def parse_line(line: str) -> Command | str:
    """A `Command`, or the text of a message to send (SC3)."""
    text = line.strip()
    if not text.startswith("/"):
        return line.strip("\n")
    if text.startswith("//"):
        return text[1:]
    head, _, tail = text[1:].partition(" ")
    name = head.lower()
    spec = COMMANDS.get(name)
    if spec is None:
        raise UnknownCommand(f"unknown command /{head}; /help lists the commands")  # SC1
    tail = tail.strip()
    if spec.rest:
        args: tuple[str, ...] = (tail,) if tail else ()
    else:
        args = tuple(tail.split())
    if not spec.min_args <= len(args) <= spec.max_args:  # SC2
        raise BadArguments(f"usage: /{spec.name} {spec.usage}".rstrip())
    if name == "add" and len(args) == 2 and args[1].lower() not in LEVELS:
        raise BadArguments(f"level {args[1]!r} is not one of read, write, manage")
    if name == "notify" and args[0].lower() not in ("on", "off"):
        raise BadArguments(f"/notify takes on or off, not {args[0]!r}")
    return Command(name, args)
