"""Field types of p2panda 0.8 schemas and their string forms.

`bool int float str bytes`, and `relation(S)`, `relation_list(S)`, `pinned_relation(S)`,
`pinned_relation_list(S)` where S is a schema id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Final

from p2panda.schema.errors import FieldTypeError, SchemaIdError
from p2panda.schema.id import SchemaId

__all__ = ["FieldKind", "FieldType"]


class FieldKind(Enum):
    BOOL = "bool"
    INT = "int"
    FLOAT = "float"
    STR = "str"
    BYTES = "bytes"
    RELATION = "relation"
    RELATION_LIST = "relation_list"
    PINNED_RELATION = "pinned_relation"
    PINNED_RELATION_LIST = "pinned_relation_list"

    @property
    def is_relation(self) -> bool:
        return self in _RELATION_KINDS


_RELATION_KINDS: Final = frozenset(
    {FieldKind.RELATION, FieldKind.RELATION_LIST, FieldKind.PINNED_RELATION, FieldKind.PINNED_RELATION_LIST}
)
_RELATION_RE: Final = re.compile(r"(relation|relation_list|pinned_relation|pinned_relation_list)\((.+)\)")


@dataclass(frozen=True, slots=True)
class FieldType:
    """A field type; `target` is the related schema for relation kinds, else None."""

    kind: FieldKind
    target: SchemaId | None = None

    def __post_init__(self) -> None:
        if self.kind.is_relation != (self.target is not None):
            raise FieldTypeError(
                f"field type {self.kind.value} must {'' if self.kind.is_relation else 'not '}name a schema"
            )

    @classmethod
    def parse(cls, text: str) -> FieldType:
        if not isinstance(text, str):
            raise FieldTypeError(f"field type must be a string, got {type(text).__name__}")
        if text in ("bool", "int", "float", "str", "bytes"):
            return cls(FieldKind(text))
        match = _RELATION_RE.fullmatch(text)
        if match is None:
            raise FieldTypeError(
                f"unknown field type {text!r}: expected bool, int, float, str, bytes or a relation(<schema id>) kind"
            )
        try:
            target = SchemaId.parse(match.group(2))
        except SchemaIdError as exc:
            raise FieldTypeError(f"field type {text!r} names an invalid schema: {exc}") from exc
        return cls(FieldKind(match.group(1)), target)

    def __str__(self) -> str:
        if self.target is None:
            return self.kind.value
        return f"{self.kind.value}({self.target})"
