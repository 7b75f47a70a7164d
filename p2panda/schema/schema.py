"""Schemas: system schemas with their extra rules, application schemas, and operation validation.

Checks of an operation against its schema (each raises its own `OperationSchemaError`):

- S1 every field of the operation exists in the schema.
- S2 a CREATE carries every field of the schema; a DELETE carries none.
- S3 every value has the schema's type: bool, int (never a float), float (never an int), str, bytes,
     relation (a 34-byte document id), relation_list (document ids, order and duplicates kept),
     pinned_relation (a sorted, unique, non-empty view id), pinned_relation_list (view ids; may be empty).
- S4 system schemas' extra rules: schema and field names, description length, 1-1024 fields, field types,
     blob mime type, non-empty pieces, piece size <= 256 000 bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from p2panda.hash import HASH_SIZE, Hash, HashError
from p2panda.ids import DocumentId, DocumentViewId, IdError
from p2panda.operation.model import Operation, OperationAction
from p2panda.operation.value import (
    OperationValue,
    PinnedRelation,
    PinnedRelationList,
    Relation,
    RelationList,
)
from p2panda.schema.errors import (
    FieldRuleViolation,
    FieldTypeError,
    MissingField,
    UnknownField,
    WrongFieldType,
)
from p2panda.schema.field_type import FieldKind, FieldType
from p2panda.schema.id import SCHEMA_NAME_RE, SchemaId, SystemSchema

__all__ = [
    "Schema",
    "SYSTEM_SCHEMAS",
    "FIELD_NAME_RE",
    "MIME_TYPE_RE",
    "MAX_BLOB_PIECE_SIZE",
    "validate_operation",
    "typed_value",
]

FIELD_NAME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
MIME_TYPE_RE: Final = re.compile(r"[a-z-]{1,12}/(([a-z0-9]{1,18})[.|+|-]){0,6}[a-z0-9]{1,16}")
MAX_DESCRIPTION_LENGTH: Final = 256
MAX_FIELDS: Final = 1024
MAX_BLOB_PIECE_SIZE: Final = 256_000

TypedFields = Mapping[str, OperationValue]


@dataclass(frozen=True, slots=True)
class Schema:
    """A schema: its id, description and field types (sorted by field name)."""

    id: SchemaId
    description: str
    fields: Mapping[str, FieldType]
    rules: Callable[[OperationAction, TypedFields], None] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", MappingProxyType(dict(sorted(self.fields.items()))))

    @property
    def name(self) -> str:
        return self.id.name


def _hash(value: object, field_name: str, expected: str) -> Hash:
    if not isinstance(value, (bytes, Hash)):
        raise WrongFieldType(f"field {field_name!r} expects {expected}, got {type(value).__name__}")
    try:
        return value if isinstance(value, Hash) else Hash(value)
    except HashError as exc:
        raise WrongFieldType(f"field {field_name!r} expects {expected}: {exc}") from exc


def _view_id(value: object, field_name: str, expected: str) -> DocumentViewId:
    if isinstance(value, DocumentViewId):
        return value
    if not isinstance(value, list):
        raise WrongFieldType(f"field {field_name!r} expects {expected}, got {type(value).__name__}")
    hashes = [_hash(v, field_name, expected) for v in value]
    try:
        return DocumentViewId.from_canonical(hashes, f"field {field_name!r}")
    except IdError as exc:
        raise WrongFieldType(f"field {field_name!r} expects {expected}: {exc}") from exc


def typed_value(field_name: str, field_type: FieldType, value: OperationValue) -> OperationValue:
    """S3: check `value` against `field_type` and return it typed (relations become relation values)."""
    kind = field_type.kind
    expected = str(field_type)
    if kind is FieldKind.BOOL:
        if isinstance(value, bool):
            return value
    elif kind is FieldKind.INT:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is FieldKind.FLOAT:
        if isinstance(value, float):
            return value
    elif kind is FieldKind.STR:
        if isinstance(value, str):
            return value
    elif kind is FieldKind.BYTES:
        if isinstance(value, bytes):
            return value
    elif kind is FieldKind.RELATION:
        if isinstance(value, Relation):
            return value
        if isinstance(value, bytes) and len(value) == HASH_SIZE:
            return Relation(DocumentId(_hash(value, field_name, expected).to_bytes()))
    elif kind is FieldKind.RELATION_LIST:
        if isinstance(value, RelationList):
            return value
        if isinstance(value, list) and all(isinstance(v, (bytes, Hash)) for v in value):
            return RelationList(tuple(DocumentId(_hash(v, field_name, expected).to_bytes()) for v in value))
    elif kind is FieldKind.PINNED_RELATION:
        if isinstance(value, PinnedRelation):
            return value
        if isinstance(value, list) and value:
            return PinnedRelation(_view_id(value, field_name, expected))
    elif kind is FieldKind.PINNED_RELATION_LIST:
        if isinstance(value, PinnedRelationList):
            return value
        if isinstance(value, list) and all(isinstance(v, list) for v in value):
            return PinnedRelationList(tuple(_view_id(v, field_name, expected) for v in value))
    raise WrongFieldType(f"field {field_name!r} expects {expected}, got {_describe(value)}")


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, bytes):
        return f"{len(value)} bytes"
    if isinstance(value, list):
        return "an empty array" if not value else f"an array of {_describe(value[0])}"
    return type(value).__name__


def validate_operation(operation: Operation, schema: Schema) -> TypedFields | None:
    """S1-S4: check the operation's fields against `schema`; returns them typed (None for DELETE)."""
    if operation.schema_id != schema.id:
        raise UnknownField(f"operation is for schema {operation.schema_id}, not {schema.id}")
    if operation.fields is None:
        return None
    for name in operation.fields:  # S1
        if name not in schema.fields:
            raise UnknownField(f"field {name!r} is not in schema {schema.id}")
    if operation.action is OperationAction.CREATE:  # S2
        missing = [name for name in schema.fields if name not in operation.fields]
        if missing:
            raise MissingField(f"create lacks field {missing[0]!r} of type {schema.fields[missing[0]]}")
    typed = {
        name: typed_value(name, schema.fields[name], value)  # S3
        for name, value in operation.fields.items()
    }
    if schema.rules is not None:  # S4
        schema.rules(operation.action, typed)
    return typed


def _schema_definition_rules(action: OperationAction, fields: TypedFields) -> None:
    name = fields.get("name")
    if isinstance(name, str) and not SCHEMA_NAME_RE.fullmatch(name):
        raise FieldRuleViolation(f"schema name {name!r} does not match {SCHEMA_NAME_RE.pattern}")
    description = fields.get("description")
    if isinstance(description, str) and len(description) > MAX_DESCRIPTION_LENGTH:
        raise FieldRuleViolation(
            f"schema description is {len(description)} chars, at most {MAX_DESCRIPTION_LENGTH} are allowed"
        )
    field_list = fields.get("fields")
    if isinstance(field_list, PinnedRelationList) and not 1 <= len(field_list.view_ids) <= MAX_FIELDS:
        raise FieldRuleViolation(f"a schema has 1 to {MAX_FIELDS} fields, got {len(field_list.view_ids)}")


def _field_definition_rules(action: OperationAction, fields: TypedFields) -> None:
    name = fields.get("name")
    if isinstance(name, str) and not FIELD_NAME_RE.fullmatch(name):
        raise FieldRuleViolation(f"field name {name!r} does not match {FIELD_NAME_RE.pattern}")
    type_text = fields.get("type")
    if isinstance(type_text, str):
        try:
            FieldType.parse(type_text)
        except FieldTypeError as exc:
            raise FieldRuleViolation(str(exc)) from exc


def _blob_rules(action: OperationAction, fields: TypedFields) -> None:
    mime = fields.get("mime_type")
    if isinstance(mime, str) and not MIME_TYPE_RE.fullmatch(mime):
        raise FieldRuleViolation(f"blob mime type {mime!r} does not match {MIME_TYPE_RE.pattern}")
    pieces = fields.get("pieces")
    if isinstance(pieces, PinnedRelationList) and not pieces.view_ids:
        raise FieldRuleViolation("a blob needs at least one piece")
    length = fields.get("length")
    if isinstance(length, int) and not isinstance(length, bool) and length < 0:
        raise FieldRuleViolation(f"blob length must not be negative, got {length}")


def _blob_piece_rules(action: OperationAction, fields: TypedFields) -> None:
    data = fields.get("data")
    if isinstance(data, bytes) and len(data) > MAX_BLOB_PIECE_SIZE:
        raise FieldRuleViolation(f"blob piece is {len(data)} bytes, at most {MAX_BLOB_PIECE_SIZE} are allowed")


def _system(schema: SystemSchema, description: str, fields: dict[str, str], rules: Callable[..., None]) -> Schema:
    return Schema(
        SchemaId.system_schema(schema),
        description,
        {name: FieldType.parse(text) for name, text in fields.items()},
        rules,
    )


SYSTEM_SCHEMAS: Final[Mapping[SchemaId, Schema]] = MappingProxyType(
    {
        s.id: s
        for s in (
            _system(
                SystemSchema.SCHEMA_DEFINITION_V1,
                "Publish data schemas for your application.",
                {
                    "name": "str",
                    "description": "str",
                    "fields": "pinned_relation_list(schema_field_definition_v1)",
                },
                _schema_definition_rules,
            ),
            _system(
                SystemSchema.SCHEMA_FIELD_DEFINITION_V1,
                "Define fields for application data schemas.",
                {"name": "str", "type": "str"},
                _field_definition_rules,
            ),
            _system(
                SystemSchema.BLOB_V1,
                "Binary data of any size, made of pieces.",
                {"length": "int", "mime_type": "str", "pieces": "pinned_relation_list(blob_piece_v1)"},
                _blob_rules,
            ),
            _system(
                SystemSchema.BLOB_PIECE_V1,
                "A piece of a blob.",
                {"data": "bytes"},
                _blob_piece_rules,
            ),
        )
    }
)
