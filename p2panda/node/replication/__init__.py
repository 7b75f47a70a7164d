"""Replication between nodes: aquadoggo's message vocabulary over our encrypted transport."""

from p2panda.node.peer import Peer, PeerAddressError
from p2panda.node.replication.messages import (
    Announce,
    EntryMessage,
    Have,
    InvalidMessage,
    Message,
    SyncDone,
    SyncRequest,
    decode_message,
    encode_message,
    sort_target,
)
from p2panda.node.replication.service import Replication, ReplicationConfig

__all__ = [
    "Announce",
    "EntryMessage",
    "Have",
    "InvalidMessage",
    "Message",
    "Peer",
    "PeerAddressError",
    "Replication",
    "ReplicationConfig",
    "SyncDone",
    "SyncRequest",
    "decode_message",
    "encode_message",
    "sort_target",
]
