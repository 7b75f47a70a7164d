"""Textual messages the widgets post to the app: small, past tense, carrying values only."""

from __future__ import annotations

from textual.message import Message

__all__ = ["ChatChosen", "LineSubmitted", "VerbChosen", "NameGiven"]


class ChatChosen(Message):
    """The user picked a chat (chat list or switcher)."""

    def __init__(self, group_id: str) -> None:
        super().__init__()
        self.group_id = group_id


class LineSubmitted(Message):
    """The composer's text was submitted (a message or a slash command)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class VerbChosen(Message):
    """A verb (reply, edit, delete, retry, save) was chosen for the selected timeline item."""

    def __init__(self, verb: str, item_id: str) -> None:
        super().__init__()
        self.verb = verb
        self.item_id = item_id


class NameGiven(Message):
    """The display name was entered at first start."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
