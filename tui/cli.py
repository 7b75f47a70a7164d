"""`panda`, with `panda chat`: the chat is the top layer, so it wraps the node's command line rather than
the other way round (`node_adapter` may not import `tui`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from node_adapter import cli

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # `panda [--data-dir D] chat ...`: the global option may come before the subcommand.
    head = args[2:3] if args[:1] == ["--data-dir"] else args[:1]
    if head == ["chat"]:
        from tui.run import main as chat_main

        rest = args[3:] + args[:2] if args[:1] == ["--data-dir"] else args[1:]
        return chat_main(rest)
    if args[:1] in (["-h"], ["--help"]):
        print("panda chat [--data-dir DIR] [--name NAME] ...: the terminal chat (panda chat --help)\n")
    return cli.main(args)


if __name__ == "__main__":
    sys.exit(main())
