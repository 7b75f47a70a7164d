"""The log format of `panda chat`, and the one it uses with a passphrase: values withheld.

With a passphrase the chat's state is encrypted at rest, and the log file beside it must not undo that:
errors name the offending value (a display name, a chat's name, a file name), and those are the user's
secrets. So each record keeps its format string (text written in the code, never data) and drops its
arguments; an exception keeps its type and stack frames (where it happened) and drops its message. A
record whose values are public (this node's peer address, the user's public key) says so with
`extra=PUBLIC` and keeps them.
"""

from __future__ import annotations

import logging
import traceback
from types import TracebackType

__all__ = ["LOG_FORMAT", "PUBLIC", "WithheldValuesFormatter"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PUBLIC = {"public_values": True}

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


class WithheldValuesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # A copy: other handlers of the same record (none in `panda chat`, some under tests) see it whole.
        quiet = logging.makeLogRecord(record.__dict__)
        if not isinstance(quiet.msg, str):  # `log.warning(exc)`: the object's text is a value
            quiet.msg = f"({type(quiet.msg).__qualname__} withheld)"
        if quiet.args and not getattr(quiet, "public_values", False):
            quiet.msg = f"{quiet.msg} (values withheld)"
            quiet.args = None
        quiet.exc_text = None
        return super().format(quiet)

    def formatException(self, ei: _ExcInfo) -> str:
        exc_type, _, tb = ei
        frames = "".join(traceback.format_tb(tb)) if tb is not None else ""
        name = exc_type.__qualname__ if exc_type is not None else "None"
        return f"Traceback (most recent call last, message withheld):\n{frames}{name}"
