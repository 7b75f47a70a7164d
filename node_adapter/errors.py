"""Errors of the adapter: the same types whichever node is behind it."""

from __future__ import annotations

from p2panda.errors import P2PandaError

__all__ = ["NodeAdapterError", "NodeUnavailable", "NotSupported", "PublishRefused", "QueryRefused", "StateUnreadable"]


class NodeAdapterError(P2PandaError):
    """Root of the adapter's errors."""


class NodeUnavailable(NodeAdapterError):
    """The node cannot be reached (remote) or is not started (embedded)."""


class PublishRefused(NodeAdapterError):
    """The node refused an entry; the message is the node's reason."""


class QueryRefused(NodeAdapterError):
    """The node refused a query (unknown schema, bad arguments, unknown cursor)."""


class NotSupported(NodeAdapterError):
    """The node's API cannot serve this verb (e.g. a stock aquadoggo: no subscriptions); the message
    says what is missing and why no fallback can stand in."""


class StateUnreadable(NodeAdapterError):
    """A client state file cannot be opened with the key given: encrypted and no key, or damaged."""
