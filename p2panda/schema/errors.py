"""Errors about schema ids, field types and schemas."""

from __future__ import annotations

from p2panda.errors import P2PandaError

__all__ = ["SchemaError", "SchemaIdError", "FieldTypeError"]


class SchemaError(P2PandaError):
    """Root of schema errors."""


class SchemaIdError(SchemaError):
    """A string that is not a valid schema id."""


class FieldTypeError(SchemaError):
    """A string that is not a valid field type."""
