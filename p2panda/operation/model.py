"""The operation value: what an author wants to do to a document."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from p2panda.ids import DocumentViewId
from p2panda.operation.errors import InvalidOperation
from p2panda.operation.value import OperationValue
from p2panda.schema.id import SchemaId

__all__ = ["Operation", "OperationAction", "OPERATION_VERSION"]

OPERATION_VERSION = 1


class OperationAction(StrEnum):
    """The three actions, with their wire codes."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"

    @property
    def code(self) -> int:
        return _CODES[self]

    @classmethod
    def from_code(cls, code: int) -> OperationAction:
        return _ACTIONS[code]


_CODES = {OperationAction.CREATE: 0, OperationAction.UPDATE: 1, OperationAction.DELETE: 2}
_ACTIONS = {v: k for k, v in _CODES.items()}


@dataclass(frozen=True, slots=True)
class Operation:
    """CREATE has fields and no previous; UPDATE has both; DELETE has previous and no fields."""

    action: OperationAction
    schema_id: SchemaId
    previous: DocumentViewId | None = None
    fields: Mapping[str, OperationValue] | None = field(default=None)
    version: int = OPERATION_VERSION

    def __post_init__(self) -> None:
        if self.version != OPERATION_VERSION:
            raise InvalidOperation(f"unsupported operation version {self.version}")
        action = OperationAction(self.action)
        object.__setattr__(self, "action", action)
        if action is OperationAction.CREATE:
            if self.previous is not None:
                raise InvalidOperation("a create operation has no previous")
            if not self.fields:
                raise InvalidOperation("a create operation needs at least one field")
        else:
            if self.previous is None:
                raise InvalidOperation(f"an {action} operation needs previous")
        if action is OperationAction.DELETE and self.fields is not None:
            raise InvalidOperation("a delete operation has no fields")
        if action is OperationAction.UPDATE and self.fields is None:
            raise InvalidOperation("an update operation needs fields (an empty map is allowed)")
        if self.fields is not None:
            for name in self.fields:
                if not isinstance(name, str):
                    raise InvalidOperation(f"field name {name!r} is not a string")
            object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))

    @classmethod
    def create(cls, schema_id: SchemaId, fields: Mapping[str, OperationValue]) -> Operation:
        return cls(OperationAction.CREATE, schema_id, None, fields)

    @classmethod
    def update(cls, schema_id: SchemaId, previous: DocumentViewId, fields: Mapping[str, OperationValue]) -> Operation:
        return cls(OperationAction.UPDATE, schema_id, previous, fields)

    @classmethod
    def delete(cls, schema_id: SchemaId, previous: DocumentViewId) -> Operation:
        return cls(OperationAction.DELETE, schema_id, previous, None)
