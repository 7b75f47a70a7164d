"""With a passphrase `panda chat` logs no values: format strings stay, arguments and exception messages go."""

from __future__ import annotations

import logging
import sys

from tui.log_format import LOG_FORMAT, PUBLIC, WithheldValuesFormatter


def _record(msg: object, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = None
    if exc is not None:
        try:
            raise exc
        except BaseException:
            exc_info = sys.exc_info()
    return logging.LogRecord("tui", logging.WARNING, __file__, 1, msg, args or None, exc_info)


def test_arguments_and_exception_messages_are_withheld() -> None:
    formatter = WithheldValuesFormatter(LOG_FORMAT)
    record = _record("handling %s: %s", "the secret zeppelin", 42, exc=ValueError("chat 'nightingale' unknown"))
    text = formatter.format(record)
    assert "handling %s: %s (values withheld)" in text
    assert "Traceback (most recent call last, message withheld)" in text and "raise exc" in text
    assert text.endswith("\nValueError")
    assert "zeppelin" not in text and "nightingale" not in text and "42" not in text
    # The record itself is untouched: another handler still sees the values.
    assert record.getMessage() == "handling the secret zeppelin: 42"
    assert "zeppelin" in logging.Formatter(LOG_FORMAT).format(record)


def test_a_logged_object_is_withheld_and_a_plain_message_kept() -> None:
    formatter = WithheldValuesFormatter(LOG_FORMAT)
    assert formatter.format(_record(ValueError("display name 'zeppelin' is too long"))).endswith(
        "tui: (ValueError withheld)"
    )
    assert formatter.format(_record("shutting down")).endswith("tui: shutting down")


def test_a_record_marked_public_keeps_its_values() -> None:
    record = _record("peer address: %s", "ab12@127.0.0.1:2022")
    record.__dict__.update(PUBLIC)
    assert WithheldValuesFormatter(LOG_FORMAT).format(record).endswith("tui: peer address: ab12@127.0.0.1:2022")
