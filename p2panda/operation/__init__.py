"""p2panda 0.8 operations: `[version, action, schema_id, (previous), (fields)]` as canonical CBOR.

See `p2panda.operation.decode` for the numbered checks OP1–OP10.
"""

from p2panda.operation.decode import decode_operation
from p2panda.operation.encode import encode_operation
from p2panda.operation.errors import (
    InvalidAction,
    InvalidFields,
    InvalidFieldValue,
    InvalidItemCount,
    InvalidOperation,
    InvalidPrevious,
    InvalidSchemaId,
    InvalidVersion,
    MalformedCbor,
    NonCanonicalEncoding,
    NotAnArray,
    OperationError,
)
from p2panda.operation.model import OPERATION_VERSION, Operation, OperationAction
from p2panda.operation.value import (
    OperationValue,
    PinnedRelation,
    PinnedRelationList,
    PlainValue,
    Relation,
    RelationList,
)

__all__ = [
    "OPERATION_VERSION",
    "Operation",
    "OperationAction",
    "OperationValue",
    "PlainValue",
    "Relation",
    "RelationList",
    "PinnedRelation",
    "PinnedRelationList",
    "decode_operation",
    "encode_operation",
    "OperationError",
    "MalformedCbor",
    "NotAnArray",
    "InvalidVersion",
    "InvalidAction",
    "InvalidSchemaId",
    "InvalidItemCount",
    "InvalidPrevious",
    "InvalidFields",
    "InvalidFieldValue",
    "NonCanonicalEncoding",
    "InvalidOperation",
]
