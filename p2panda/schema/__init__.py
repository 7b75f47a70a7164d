"""Schemas of p2panda 0.8: schema ids, field types, system schemas, application schemas, validation.

Validation names (`Schema`, `SYSTEM_SCHEMAS`, `validate_operation`, `schema_from_documents`, ...) are
loaded on first use: `p2panda.operation` needs schema ids, and validation needs operations.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from p2panda.schema.errors import (
    FieldRuleViolation,
    FieldTypeError,
    MissingField,
    OperationSchemaError,
    SchemaDefinitionError,
    SchemaError,
    SchemaIdError,
    UnknownField,
    WrongFieldType,
)
from p2panda.schema.field_type import FieldKind, FieldType
from p2panda.schema.id import SCHEMA_NAME_RE, SchemaId, SystemSchema

if TYPE_CHECKING:
    from p2panda.schema.definition import schema_from_documents
    from p2panda.schema.schema import (
        FIELD_NAME_RE,
        MAX_BLOB_PIECE_SIZE,
        MIME_TYPE_RE,
        SYSTEM_SCHEMAS,
        Schema,
        typed_value,
        validate_operation,
    )

_LAZY = {
    "schema_from_documents": "p2panda.schema.definition",
    "FIELD_NAME_RE": "p2panda.schema.schema",
    "MAX_BLOB_PIECE_SIZE": "p2panda.schema.schema",
    "MIME_TYPE_RE": "p2panda.schema.schema",
    "SYSTEM_SCHEMAS": "p2panda.schema.schema",
    "Schema": "p2panda.schema.schema",
    "typed_value": "p2panda.schema.schema",
    "validate_operation": "p2panda.schema.schema",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'p2panda.schema' has no attribute {name!r}")


__all__ = [
    "FIELD_NAME_RE",
    "MAX_BLOB_PIECE_SIZE",
    "MIME_TYPE_RE",
    "SCHEMA_NAME_RE",
    "SYSTEM_SCHEMAS",
    "FieldKind",
    "FieldRuleViolation",
    "FieldType",
    "FieldTypeError",
    "MissingField",
    "OperationSchemaError",
    "Schema",
    "SchemaDefinitionError",
    "SchemaError",
    "SchemaId",
    "SchemaIdError",
    "SystemSchema",
    "UnknownField",
    "WrongFieldType",
    "schema_from_documents",
    "typed_value",
    "validate_operation",
]
