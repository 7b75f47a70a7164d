"""The errors of `panda chat`'s front end."""

from __future__ import annotations

from node_adapter.chat import ChatError

__all__ = ["TuiError", "UnknownCommand", "BadArguments"]


class TuiError(ChatError):
    """Root of the front end's errors."""


class UnknownCommand(TuiError):
    """A slash command that does not exist (SC1)."""


class BadArguments(TuiError):
    """A slash command with missing, extra or invalid arguments (SC2)."""
