"""`panda`: the p2panda command line with this application's node: key groups enforced (their policy and
schema bundle plugged into every node it runs)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from node_adapter.embedded import with_key_groups
from p2panda import cli

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(argv, configure=with_key_groups)


if __name__ == "__main__":
    sys.exit(main())
