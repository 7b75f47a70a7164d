"""`ChatHeader`: the open chat's name, encryption mode and epoch, who can read it, and the network."""

from __future__ import annotations

import time

from textual.content import Content
from textual.widgets import Static

from node_adapter.chat import NetworkStatus

__all__ = ["ChatHeader", "network_text"]


def network_text(status: NetworkStatus) -> Content:
    """Offline is a normal state: said plainly, in the same place and colour scheme as online."""
    synced = "never" if status.last_sync is None else time.strftime("%H:%M:%S", time.localtime(status.last_sync))
    if status.kind == "remote":
        return Content(f"remote node · last sync {synced}")
    if status.kind != "embedded":
        return Content(f"local only · last sync {synced}")
    if status.peers == 0:
        return Content.assemble(Content.styled("offline", "$warning"), f" (0 peers) · last sync {synced}")
    peers = "1 peer" if status.peers == 1 else f"{status.peers} peers"
    return Content.assemble(Content.styled("online", "$success"), f" ({peers}) · last sync {synced}")


class ChatHeader(Static):
    DEFAULT_CSS = """
    ChatHeader {
        height: 1;
        background: $panel;
        color: $text;
        padding: 0 1;
    }
    """

    def show(self, title: Content, network: Content) -> None:
        """The title on the left, the network on the right; when both do not fit, the title is cut (with
        an ellipsis), never the network."""
        width = self.size.width - 2 if self.size.width > 2 else 78
        room = width - network.cell_length - 1
        if title.cell_length > room:
            title = title.truncate(max(room, 1), ellipsis=True)
        gap = max(1, width - title.cell_length - network.cell_length)
        self.update(Content.assemble(title, " " * gap, network))
