"""Schemas of p2panda 0.8: schema ids and field types."""

from p2panda.schema.errors import FieldTypeError, SchemaError, SchemaIdError
from p2panda.schema.field_type import FieldKind, FieldType
from p2panda.schema.id import SCHEMA_NAME_RE, SchemaId, SystemSchema

__all__ = [
    "SCHEMA_NAME_RE",
    "FieldKind",
    "FieldType",
    "FieldTypeError",
    "SchemaError",
    "SchemaId",
    "SchemaIdError",
    "SystemSchema",
]
