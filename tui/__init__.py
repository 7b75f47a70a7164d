"""`panda chat`: the Textual terminal chat client over `node_adapter.Chat`."""

from tui.app import ChatApp
from tui.commands import COMMANDS, Command, parse_line
from tui.errors import BadArguments, TuiError, UnknownCommand

__all__ = ["ChatApp", "COMMANDS", "Command", "parse_line", "TuiError", "UnknownCommand", "BadArguments"]
