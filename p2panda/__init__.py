"""p2panda 0.8 in Python: byte-identical entries, operations, ids and schemas (sans-IO core)."""

from p2panda.errors import P2PandaError
from p2panda.hash import Hash, HashError
from p2panda.identity import IdentityError, KeyPair, PublicKey
from p2panda.ids import DocumentId, DocumentViewId, IdError, OperationId

__all__ = [
    "P2PandaError",
    "Hash",
    "HashError",
    "KeyPair",
    "PublicKey",
    "IdentityError",
    "OperationId",
    "DocumentId",
    "DocumentViewId",
    "IdError",
]
