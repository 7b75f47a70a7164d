"""`Composer`: the multi-line input. Enter sends; Shift+Enter, Alt+Enter or Ctrl+J start a new line.

Esc never destroys what is written: it leaves reply or edit mode (keeping the text) and moves the focus to
the timeline. The app keeps one draft per chat (and stores it), so switching chats keeps the text too.
"""

from __future__ import annotations

from textual import events
from textual.widgets import TextArea

from tui.messages import LineSubmitted

__all__ = ["Composer"]

NEWLINE_KEYS = ("shift+enter", "alt+enter", "ctrl+j")


class Composer(TextArea):
    DEFAULT_CSS = """
    Composer {
        height: auto;
        min-height: 3;
        max-height: 8;
        border: round $primary-muted;
        border-title-color: $text-muted;
    }
    Composer:focus { border: round $primary; }
    """

    def __init__(self) -> None:
        super().__init__(soft_wrap=True, tab_behavior="focus", show_line_numbers=False, id="composer")
        self.verb: str | None = None  # "reply" or "edit"
        self.target: str | None = None  # the message replied to or edited
        self._saved = ""
        self._title = "Message (Enter sends, Shift+Enter new line, /help)"

    def on_mount(self) -> None:
        self.border_title = self._title

    def start(self, verb: str, target: str, label: str, text: str | None = None) -> None:
        """Reply to or edit `target`; an edit starts from the message's text."""
        if self.verb == "edit":
            self.cancel()
        self.verb, self.target = verb, target
        self.border_title = label
        if text is not None:
            self._saved = self.text  # the draft comes back when the edit is done or cancelled
            self.load_text(text)
            self.move_cursor(self.document.end)
        self.focus()

    def cancel(self) -> None:
        if self.verb == "edit":
            self.load_text(self._saved)
            self.move_cursor(self.document.end)
        self._saved = ""
        self.verb = self.target = None
        self.border_title = self._title

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            if self.text.strip():
                self.post_message(LineSubmitted(self.text))
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            start, end = self.selection
            self._replace_via_keyboard("\n", start, end)
            return
        if event.key == "escape":
            event.stop()
            event.prevent_default()
            if self.verb is not None:
                self.cancel()
            else:
                self.screen.focus_previous()  # the timeline, to select a message
            return
        await super()._on_key(event)
