"""Helpers for Client tests: people with an embedded node each, replicating over 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TypeVar

from node_adapter import Client, EmbeddedNode, Group
from p2panda.identity import KeyPair, PublicKey
from p2panda.keystore import load_or_create_node_key
from secret_group.schemas import KEY_PACKAGE_SCHEMA

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 30.0, what: str = "") -> T:
    """Poll `check` until it returns something truthy; errors it raises propagate at once."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {what or check}")
        await asyncio.sleep(0.05)


class Person:
    """A key pair with an embedded node (in `root/name`) and a Client; `start()` / `stop()` them."""

    def __init__(self, root: Path, name: str, peers: tuple[str, ...] = (), port: int = 0) -> None:
        self.name = name
        self.key_pair = KeyPair.generate()
        self.data_dir = root / name
        self.peers = peers
        self.port = port
        self.node: EmbeddedNode | None = None
        self.client: Client | None = None
        self._stack: AsyncExitStack | None = None

    @property
    def key(self) -> PublicKey:
        return self.key_pair.public_key

    async def start(self, *, peers: tuple[str, ...] | None = None) -> Person:
        self._stack = AsyncExitStack()
        self.node = await self._stack.enter_async_context(
            EmbeddedNode(self.data_dir, replication_port=self.port, peers=self.peers if peers is None else peers)
        )
        assert self.node.replication is not None
        self.port = self.node.replication.port  # keep the port across restarts, peers dial it
        self.client = await self._stack.enter_async_context(Client(self.node, self.key_pair))
        return self

    async def stop(self) -> None:
        assert self._stack is not None
        await self._stack.aclose()
        self._stack = None
        self.node = None
        self.client = None

    @property
    def address(self) -> str:
        """The peer address of this person's node: its node key (kept in the data directory, the same across
        restarts) @ its port."""
        return f"{load_or_create_node_key(self.data_dir).public_key.hex()}@127.0.0.1:{self.port}"

    def c(self) -> Client:
        assert self.client is not None
        return self.client

    async def group(self, group_id: str) -> Group:
        async def joined() -> Group | None:
            for group in await self.c().all_groups():
                if group.id == group_id:
                    return group
            return None

        return await eventually(joined, what=f"{self.name} joins {group_id}")

    async def texts(self, group: Group, count: int) -> list[str]:
        async def enough() -> list[str] | None:
            texts = [m.text for m in await group.messages()]
            return texts if len(texts) >= count else None

        return await eventually(enough, what=f"{self.name} reads {count} messages")


async def key_packages_visible(node: EmbeddedNode, key: PublicKey) -> None:
    """Wait until `node` holds a key package of `key` (it replicated from the key's node)."""

    async def seen() -> bool:
        page = await node.query(KEY_PACKAGE_SCHEMA, meta={"owner": {"eq": key.hex()}})
        return page.total > 0

    await eventually(seen, what=f"key package of {key.hex()}")
