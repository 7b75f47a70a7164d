"""Document change notifications: one hub per node, a bounded queue per subscriber.

A subscriber that falls more than `capacity` changes behind is cut off with `SubscriptionLagged`
rather than slowing the node or growing without bound; it re-reads the documents it cares about and
subscribes again. Changes are announced after their transaction committed, so a subscriber that reads
on a notification always finds the announced view.

Subscription states: open -> (closed | lagged). Both ends are final; iteration stops on closed and
raises on lagged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType

from p2panda.hash import Hash
from p2panda.identity import PublicKey
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.node.errors import NodeError

__all__ = ["Changes", "DocumentChanged", "Subscription", "SubscriptionLagged"]

DEFAULT_CAPACITY = 1024


class SubscriptionLagged(NodeError):
    """The subscriber did not keep up and missed changes."""


@dataclass(frozen=True, slots=True)
class DocumentChanged:
    document_id: DocumentId
    schema_id: str
    view_id: DocumentViewId
    operation_id: Hash
    public_key: PublicKey
    is_deleted: bool


_CLOSED = object()


class Subscription:
    """An async iterator of `DocumentChanged`; use as `async with node.subscribe() as changes:`."""

    def __init__(self, hub: Changes, schema_ids: frozenset[str] | None, capacity: int) -> None:
        self._hub = hub
        self.schema_ids = schema_ids
        self._queue: asyncio.Queue[object] = asyncio.Queue(capacity + 1)
        self._capacity = capacity
        self.lagged = False

    def _offer(self, change: DocumentChanged) -> None:
        if self.schema_ids is not None and change.schema_id not in self.schema_ids:
            return
        if self._queue.qsize() >= self._capacity:
            self.lagged = True
            self._hub.discard(self)
            self._queue.put_nowait(_CLOSED)
            return
        self._queue.put_nowait(change)

    def close(self) -> None:
        self._hub.discard(self)
        if not self._queue.full():
            self._queue.put_nowait(_CLOSED)

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __aiter__(self) -> AsyncIterator[DocumentChanged]:
        return self

    async def __anext__(self) -> DocumentChanged:
        item = await self._queue.get()
        if item is _CLOSED:
            if self.lagged:
                raise SubscriptionLagged(f"subscriber fell more than {self._capacity} changes behind")
            raise StopAsyncIteration
        assert isinstance(item, DocumentChanged)
        return item


class Changes:
    """The hub: `publish` fans a change out to every open subscription."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()

    def subscribe(self, schema_ids: frozenset[str] | None = None, capacity: int = DEFAULT_CAPACITY) -> Subscription:
        subscription = Subscription(self, schema_ids, capacity)
        self._subscriptions.add(subscription)
        return subscription

    def discard(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def wanted(self, schema_id: str) -> bool:
        """Whether any subscription would take a change of this schema (building one costs parsing)."""
        return any(s.schema_ids is None or schema_id in s.schema_ids for s in self._subscriptions)

    def publish(self, change: DocumentChanged) -> None:
        for subscription in list(self._subscriptions):
            subscription._offer(change)

    def close(self) -> None:
        for subscription in list(self._subscriptions):
            subscription.close()
