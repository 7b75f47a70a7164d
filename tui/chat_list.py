"""`ChatList`: the chats, each with its unread count on three levels (mention > message > muted)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tui.messages import ChatChosen

__all__ = ["ChatList", "ChatRow"]


@dataclass(frozen=True, slots=True)
class ChatRow:
    group_id: str
    name: str
    unread: int
    mentions: int
    muted: bool
    member: bool  # False once we were removed
    left: bool = False  # we left it: listed only while open, read-only


def render_row(row: ChatRow) -> Content:
    name = f"{row.name} (left)" if row.left else row.name if row.member else f"{row.name} (removed)"
    if row.mentions:
        badge = Content.styled(f" @{row.mentions}", "bold $error")
    elif row.unread and not row.muted:
        badge = Content.styled(f" {row.unread}", "bold $accent")
    elif row.unread:
        badge = Content.styled(f" {row.unread}", "dim")
    else:
        badge = Content("")
    style = "dim" if row.muted or not row.member or row.left else ("bold" if row.unread else "")
    return Content.assemble(Content.styled(name, style), badge)


class ChatList(OptionList):
    DEFAULT_CSS = """
    ChatList {
        width: 22;
        height: 1fr;
        border: round $primary-muted;
        border-title-color: $text-muted;
    }
    ChatList:focus { border: round $primary; }
    """

    def on_mount(self) -> None:
        self.border_title = "Chats"

    def show(self, rows: list[ChatRow], current: str | None) -> None:
        self.clear_options()
        self.add_options(Option(render_row(r), id=r.group_id) for r in rows)
        if current is not None:
            for index, row in enumerate(rows):
                if row.group_id == current:
                    self.highlighted = index

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(ChatChosen(event.option.id))
