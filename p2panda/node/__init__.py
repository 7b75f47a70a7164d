"""The p2panda node: SQL store, publish pipeline, materialiser.

`p2panda.node` never imports the group packages (keygroups, secret_group); policies come from outside.
"""

from p2panda.node.errors import (
    AlreadyStored,
    DocumentDeleted,
    DocumentNotFound,
    ForkDetected,
    LinkMismatch,
    LogIdMismatch,
    NodeError,
    OutOfRange,
    PreviousFromOtherDocument,
    PreviousNotFound,
    PublishError,
    SchemaNotAllowed,
    SchemaNotFound,
    SeqNumMismatch,
)
from p2panda.node.node import Node, NodeConfig
from p2panda.node.publish import NextArgs, Published

__all__ = [
    "Node",
    "NodeConfig",
    "NextArgs",
    "Published",
    "NodeError",
    "PublishError",
    "SeqNumMismatch",
    "AlreadyStored",
    "LinkMismatch",
    "ForkDetected",
    "SchemaNotFound",
    "SchemaNotAllowed",
    "PreviousNotFound",
    "PreviousFromOtherDocument",
    "DocumentDeleted",
    "LogIdMismatch",
    "OutOfRange",
    "DocumentNotFound",
]
