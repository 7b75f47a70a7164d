"""`TimelineView`: one chat's messages, files and notices, newest at the bottom.

It stays pinned to the newest message while the view is at the bottom, keeps its place when scrolled
back (new messages do not move it), and renders only the newest `window` entries: "older messages"
at the top loads more (Enter on it, or `load_older`), so long histories stay fast.

Select a message (arrows or mouse), then act: `r` reply, `e` edit, `d` delete, `y` retry a failed
message, `s` save a file. Undecryptable envelopes are shown as placeholders with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.content import Content
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from node_adapter.chat import FileInfo, Timeline
from node_adapter.group import Message
from p2panda.identity import PublicKey
from tui.messages import VerbChosen

__all__ = ["TimelineView", "Entry", "entries_of"]

OLDER = "older"
WINDOW = 500


@dataclass(frozen=True, slots=True)
class Entry:
    id: str  # "m:<message id>", "f:<file id>", "n:<n>" (a notice), "u:<envelope id>" (undecryptable)
    content: Content


def _state(m: Message, me: PublicKey) -> Content:
    if m.author != me:
        return Content("")
    if m.state == "pending":
        return Content.styled(" · pending", "$warning")
    if m.state == "failed":
        return Content.styled(f" · failed: {m.error} (y retries)", "bold $error")
    if m.state == "delivered":
        return Content.styled(" · delivered", "dim $success")  # a peer node has it
    return Content.styled(" · sent", "dim")  # on our node, no peer node has it yet


def entries_of(timeline: Timeline, me: PublicKey, name_of: Callable[[PublicKey], str], *, skip: int = 0) -> list[Entry]:
    """The entries of a chat in order: what cannot be read first, then messages and files by lamport.
    The `skip` oldest messages and files are left out (not rendered at all: long histories stay cheap)."""
    out: list[Entry] = []
    if timeline.unavailable:
        out.append(
            Entry(
                "n:unavailable",
                Content.styled(
                    f"— {timeline.unavailable} encrypted item(s) from before you joined are not available "
                    "(this chat does not share history) —",
                    "italic $text-muted",
                ),
            )
        )
    for envelope_id, reason in timeline.undecryptable:
        out.append(Entry(f"u:{envelope_id}", Content.styled(f"⚠ a message could not be decrypted: {reason}", "$error")))
    by_id = {**timeline.quoted, **{m.id: m for m in timeline.messages}}
    items: list[tuple[int, str, Message | FileInfo | PublicKey]] = [(m.lamport, m.id, m) for m in timeline.messages]
    items += [(f.lamport, f.id, f) for f in timeline.files]
    first = min((i[0] for i in items), default=0) if timeline.older else 0
    items += [(lamport, f"left:{key.hex()}", key) for key, lamport in timeline.left if lamport >= first]
    items.sort(key=lambda i: (i[0], i[1]))
    for _, item_id, item in items[skip:]:
        if isinstance(item, PublicKey):
            left = Content.styled(f"— {name_of(item)} left the chat —", "italic $text-muted")
            out.append(Entry(f"n:{item_id}", left))
            continue
        author = Content.styled(name_of(item.author), "bold $accent" if item.author != me else "bold $primary")
        if isinstance(item, FileInfo):
            progress = "" if item.received >= item.pieces else f" ({item.received}/{item.pieces} pieces)"
            text = Content.assemble(author, f": 📎 {item.name} ({_size(item.size)}){progress} — s saves")
            out.append(Entry(f"f:{item.id}", text))
            continue
        parts: list[Content | str] = []
        if item.reply_to is not None:
            quoted = by_id.get(item.reply_to)
            quote = f"↪ {name_of(quoted.author)}: {_short(quoted.text)}" if quoted else "↪ a deleted message"
            parts += [Content.styled(quote, "dim italic"), "\n"]
        parts += [author, ": ", item.text]
        if item.edited:
            parts.append(Content.styled(" (edited)", "dim"))
        parts.append(_state(item, me))
        out.append(Entry(f"m:{item.id}", Content.assemble(*parts)))
    if timeline.removed:
        out.append(
            Entry(
                "n:removed",
                Content.styled(
                    "— you were removed from this chat: nothing sent after that reaches you —", "bold $error"
                ),
            )
        )
    return out


def _short(text: str, width: int = 50) -> str:
    line = text.replace("\n", " ")
    return line if len(line) <= width else line[: width - 1] + "…"


def _size(size: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if size < 1024 or unit == "MiB":
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size} B"


class TimelineView(OptionList):
    DEFAULT_CSS = """
    TimelineView {
        height: 1fr;
        border: round $primary-muted;
        border-title-color: $text-muted;
    }
    TimelineView:focus { border: round $primary; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "verb('reply')", "Reply"),
        Binding("e", "verb('edit')", "Edit"),
        Binding("d", "verb('delete')", "Delete"),
        Binding("y", "verb('retry')", "Retry", show=False),
        Binding("s", "verb('save')", "Save file", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(id="timeline")
        self.window = WINDOW
        self.entries: list[Entry] = []
        self._pinned = True

    def show(self, entries: list[Entry], notices: list[Content], older: int = 0) -> None:
        """Replace the entries (`older` more before them were not rendered); keeps the place unless the
        view is at the newest entry."""
        pinned = self.max_scroll_y == 0 or self.scroll_y >= self.max_scroll_y - 1
        scroll_y = self.scroll_y
        selected = self.highlighted_id()
        shown = entries[-self.window :]
        self.entries = entries
        options: list[Option] = []
        older += len(entries) - len(shown)
        if older:
            options.append(Option(Content.styled(f"↑ {older} older messages (Enter loads them)", "dim"), id=OLDER))
        options += [Option(e.content, id=e.id) for e in shown]
        options += [Option(n, id=f"n:{i}") for i, n in enumerate(notices)]
        self.clear_options()
        self.add_options(options)
        if selected is not None and self.has_focus:
            try:
                self.highlighted = self.get_option_index(selected)
            except Exception:  # the selected message was deleted
                self.highlighted = None
        if pinned:
            self.call_after_refresh(self.scroll_end, animate=False, immediate=True)
        else:
            self.call_after_refresh(self.scroll_to, y=scroll_y, animate=False, immediate=True)

    def on_focus(self) -> None:
        """Coming from the composer, select the newest message (the usual target of a verb)."""
        if self.highlighted is None:
            for index in range(self.option_count - 1, -1, -1):
                if (self.get_option_at_index(index).id or "").startswith(("m:", "f:")):
                    self.highlighted = index
                    return

    def highlighted_id(self) -> str | None:
        if self.highlighted is None:
            return None
        option = self.get_option_at_index(self.highlighted)
        return option.id

    def load_older(self) -> None:
        self.window += WINDOW
        self.scroll_y = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id == OLDER:
            self.load_older()
            self.post_message(VerbChosen("older", OLDER))

    def action_verb(self, verb: str) -> None:
        item = self.highlighted_id()
        if item is not None:
            self.post_message(VerbChosen(verb, item))
