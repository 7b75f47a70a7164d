"""The root of every error the p2panda package raises.

Errors are facts about a value we received or were given; their messages are lower-case and name the
offending value, so a log line alone says what was wrong.
"""

from __future__ import annotations

__all__ = ["P2PandaError"]


class P2PandaError(Exception):
    """Root exception of the `p2panda` package."""
