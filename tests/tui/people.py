"""Helpers for the TUI tests: a person is a real embedded node (replicating over 127.0.0.1, no mDNS), a
real `Client` and a real `Chat` in tmp_path; the app runs under Textual's Pilot."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path

from textual.pilot import Pilot

from node_adapter import Client, EmbeddedNode
from node_adapter.chat import Chat
from p2panda.identity import KeyPair, PublicKey
from p2panda.keystore import load_or_create_node_key
from tests.node_adapter.clients import eventually
from tui.app import ChatApp
from tui.timeline import TimelineView

__all__ = ["Person", "eventually", "timeline_text", "type_line"]


class Person:
    def __init__(
        self,
        root: Path,
        name: str,
        peers: tuple[str, ...] = (),
        *,
        key_pair: KeyPair | None = None,
        clock: Callable[[], float] = time.time,
        passphrase: bytes | None = None,
    ) -> None:
        self.name = name
        self.passphrase = passphrase
        self.key_pair = key_pair or KeyPair.generate()
        self.clock = clock
        self.data_dir = root / name
        self.peers = peers
        self.port = 0
        self._stack: AsyncExitStack | None = None
        self.node: EmbeddedNode | None = None
        self.chat: Chat | None = None

    @property
    def key(self) -> PublicKey:
        return self.key_pair.public_key

    @property
    def address(self) -> str:
        """The peer address of this person's node: its node key (kept in the data directory, the same across
        restarts) @ its port."""
        return f"{load_or_create_node_key(self.data_dir).public_key.hex()}@127.0.0.1:{self.port}"

    async def start(self) -> Person:
        self._stack = AsyncExitStack()
        self.node = await self._stack.enter_async_context(
            EmbeddedNode(self.data_dir, replication_port=self.port, peers=self.peers)
        )
        assert self.node.replication is not None
        self.port = self.node.replication.port
        client = await self._stack.enter_async_context(Client(self.node, self.key_pair, passphrase=self.passphrase))
        self.chat = await self._stack.enter_async_context(Chat(client, clock=self.clock))
        return self

    async def stop(self) -> None:
        assert self._stack is not None
        await self._stack.aclose()
        self._stack = None

    def c(self) -> Chat:
        assert self.chat is not None
        return self.chat

    def app(self, name: str | None = None) -> ChatApp:
        return ChatApp(self.c(), name=name if name is not None else self.name)


def timeline_text(app: ChatApp) -> str:
    """What the timeline shows, as plain text, one entry per line."""
    view = app.query_one(TimelineView)
    return "\n".join(str(view.get_option_at_index(i).prompt) for i in range(view.option_count))


async def type_line(pilot: Pilot[None], text: str) -> None:
    """Type into the composer (focused) and press Enter, as a user does."""
    app = pilot.app
    app.query_one("#composer").focus()
    await pilot.press(*[c if c != " " else "space" for c in text])
    await pilot.press("enter")
