"""One async API for applications over a p2panda node: `EmbeddedNode` (the node in this process) or
`RemoteNode(url)` (GraphQL over HTTP and WebSocket to any aquadoggo-compatible node)."""

from node_adapter.client import Client, ClientEvent
from node_adapter.embedded import EmbeddedNode
from node_adapter.errors import (
    NodeAdapterError,
    NodeUnavailable,
    NotSupported,
    PublishRefused,
    QueryRefused,
    StateUnreadable,
)
from node_adapter.group import Group, Message
from node_adapter.interface import Changes, Node
from node_adapter.remote import RemoteNode
from node_adapter.types import DocumentView, Page, Query

__all__ = [
    "Client",
    "ClientEvent",
    "Group",
    "Message",
    "Node",
    "Changes",
    "EmbeddedNode",
    "RemoteNode",
    "DocumentView",
    "Page",
    "Query",
    "NodeAdapterError",
    "NodeUnavailable",
    "NotSupported",
    "PublishRefused",
    "QueryRefused",
    "StateUnreadable",
]
