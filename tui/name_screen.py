"""`NameScreen`: asks for a display name at first start (unless `--name` gave one)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from node_adapter.chat import InvalidName, check_name

__all__ = ["NameScreen"]


class NameScreen(ModalScreen[str]):
    DEFAULT_CSS = """
    NameScreen { align: center middle; }
    NameScreen > Vertical {
        width: 60; height: auto; padding: 1 2;
        border: thick $primary; background: $surface;
    }
    NameScreen #name-error { color: $error; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Welcome. Which display name should the members of your chats see?")
            yield Input(placeholder="display name", id="name-input")
            yield Label("", id="name-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            name = check_name(event.value)
        except InvalidName as exc:
            self.query_one("#name-error", Label).update(str(exc))
            return
        self.dismiss(name)
