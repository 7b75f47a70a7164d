"""Errors about schema ids, field types and schemas."""

from __future__ import annotations

from p2panda.errors import P2PandaError

__all__ = [
    "SchemaError",
    "SchemaIdError",
    "FieldTypeError",
    "SchemaDefinitionError",
    "OperationSchemaError",
    "UnknownField",
    "MissingField",
    "WrongFieldType",
    "FieldRuleViolation",
]


class SchemaError(P2PandaError):
    """Root of schema errors."""


class SchemaIdError(SchemaError):
    """A string that is not a valid schema id."""


class FieldTypeError(SchemaError):
    """A string that is not a valid field type."""


class SchemaDefinitionError(SchemaError):
    """A schema definition (or its field definitions) that breaks a naming or type rule."""


class OperationSchemaError(SchemaError):
    """An operation that does not fit its schema: names the field and the expected type."""


class UnknownField(OperationSchemaError):
    """S1: the operation carries a field the schema does not have."""


class MissingField(OperationSchemaError):
    """S2: a CREATE lacks a field of the schema."""


class WrongFieldType(OperationSchemaError):
    """S3: a field value is not of the schema's type for it."""


class FieldRuleViolation(OperationSchemaError):
    """S4: a system schema's extra rule is broken (names, description, mime type, piece size, ...)."""
