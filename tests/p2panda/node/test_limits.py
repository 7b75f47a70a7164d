"""H6 (p2panda/node/api/limits.py): an error the event loop reports over and over (accept failing when file
descriptors run out) is logged once with its details, then summarised at most every 10 s."""

from __future__ import annotations

import asyncio
import logging

import pytest

from p2panda.node.api.limits import RateLimitedErrors


async def test_a_repeating_loop_error_is_logged_once_then_summarised(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    handler = RateLimitedErrors(clock=lambda: now[0])
    loop = asyncio.get_running_loop()
    context = {"message": "socket.accept() out of system resource", "exception": OSError(24, "Too many open files")}
    with caplog.at_level(logging.ERROR):
        for _ in range(1000):  # a second of a flood
            handler(loop, context)
            now[0] += 0.001
        handler(loop, {"message": "another error"})
        now[0] = 111.0
        handler(loop, context)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "socket.accept() out of system resource",
        "another error",
        "socket.accept() out of system resource (again; 1000 more in the last 11 s)",
    ]
    assert caplog.records[0].exc_info is not None  # the first one keeps its traceback
