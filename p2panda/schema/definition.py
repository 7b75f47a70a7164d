"""Application schemas from their documents: a `schema_definition_v1` view and the
`schema_field_definition_v1` views it pins.

The schema id is `<name>_<view id of the definition>`, so every update of a definition is a new schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from p2panda.ids import DocumentViewId
from p2panda.operation.value import PinnedRelationList
from p2panda.schema.errors import FieldTypeError, SchemaDefinitionError, WrongFieldType
from p2panda.schema.field_type import FieldType
from p2panda.schema.id import SCHEMA_NAME_RE, SchemaId, SystemSchema
from p2panda.schema.schema import FIELD_NAME_RE, MAX_DESCRIPTION_LENGTH, MAX_FIELDS, Schema, typed_value

if TYPE_CHECKING:
    from p2panda.document.model import Document

__all__ = ["schema_from_documents"]

_DEFINITION = SchemaId.system_schema(SystemSchema.SCHEMA_DEFINITION_V1)
_FIELD_DEFINITION = SchemaId.system_schema(SystemSchema.SCHEMA_FIELD_DEFINITION_V1)


def _str_field(doc: Document, name: str) -> str:
    assert doc.fields is not None
    value = doc.fields.get(name)
    if not isinstance(value, str):
        raise SchemaDefinitionError(f"document {doc.id.hex()} has no text field {name!r}")
    return value


def schema_from_documents(definition: Document, field_definitions: Mapping[DocumentViewId, Document]) -> Schema:
    """Build the application schema of `definition`; `field_definitions` maps pinned view ids to their views."""
    if definition.schema_id != _DEFINITION:
        raise SchemaDefinitionError(
            f"document {definition.id.hex()} is a {definition.schema_id}, not a schema definition"
        )
    if definition.fields is None:
        raise SchemaDefinitionError(f"schema definition {definition.id.hex()} is deleted")
    name = _str_field(definition, "name")
    if not SCHEMA_NAME_RE.fullmatch(name):
        raise SchemaDefinitionError(f"schema name {name!r} does not match {SCHEMA_NAME_RE.pattern}")
    description = _str_field(definition, "description")
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise SchemaDefinitionError(f"schema description is {len(description)} chars, at most {MAX_DESCRIPTION_LENGTH}")
    try:
        pinned = typed_value(
            "fields", FieldType.parse("pinned_relation_list(schema_field_definition_v1)"), definition.fields["fields"]
        )
    except (KeyError, WrongFieldType) as exc:
        raise SchemaDefinitionError(f"schema definition {definition.id.hex()} has no valid fields list") from exc
    assert isinstance(pinned, PinnedRelationList)
    if not 1 <= len(pinned.view_ids) <= MAX_FIELDS:
        raise SchemaDefinitionError(f"a schema has 1 to {MAX_FIELDS} fields, got {len(pinned.view_ids)}")
    fields: dict[str, FieldType] = {}
    for view_id in pinned.view_ids:
        field_doc = field_definitions.get(view_id)
        if field_doc is None:
            raise SchemaDefinitionError(f"field definition {view_id} of schema {name!r} is missing")
        if field_doc.schema_id != _FIELD_DEFINITION or field_doc.view_id != view_id or field_doc.fields is None:
            raise SchemaDefinitionError(f"{view_id} is not a field definition view")
        field_name = _str_field(field_doc, "name")
        if not FIELD_NAME_RE.fullmatch(field_name):
            raise SchemaDefinitionError(f"field name {field_name!r} does not match {FIELD_NAME_RE.pattern}")
        if field_name in fields:
            raise SchemaDefinitionError(f"schema {name!r} defines field {field_name!r} twice")
        try:
            fields[field_name] = FieldType.parse(_str_field(field_doc, "type"))
        except FieldTypeError as exc:
            raise SchemaDefinitionError(f"field {field_name!r}: {exc}") from exc
    return Schema(SchemaId.application(name, definition.view_id), description, fields)
