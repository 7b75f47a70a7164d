"""Schemas signed by a fixed author: the (entry, operation) pairs that define an application schema.

Packages ship their schemas as bundles of such pairs (see `p2panda.node.bundle`). Ed25519 signatures are
deterministic, so the same author, definitions and log ids always give the same bytes and schema ids.
Each field definition and the schema definition is its own document in its own log, from `first_log` on.
"""

from __future__ import annotations

from collections.abc import Mapping

from p2panda.entry.encode import sign_entry
from p2panda.hash import Hash
from p2panda.identity import KeyPair
from p2panda.ids import DocumentViewId
from p2panda.operation import Operation, encode_operation
from p2panda.operation.value import PinnedRelationList
from p2panda.schema.field_type import FieldType
from p2panda.schema.id import SchemaId, SystemSchema
from p2panda.schema.schema import Schema

__all__ = ["sign_schema"]

_FIELD_DEFINITION = SchemaId.system_schema(SystemSchema.SCHEMA_FIELD_DEFINITION_V1)
_SCHEMA_DEFINITION = SchemaId.system_schema(SystemSchema.SCHEMA_DEFINITION_V1)


def _document(author: KeyPair, operation: Operation, log_id: int) -> tuple[bytes, bytes]:
    payload = encode_operation(operation)
    entry = sign_entry(author, log_id=log_id, seq_num=1, payload=payload, backlink=None, skiplink=None)
    return entry, payload


def sign_schema(
    author: KeyPair, name: str, description: str, fields: Mapping[str, str], first_log: int
) -> tuple[list[tuple[bytes, bytes]], Schema]:
    """The pairs defining the schema (field definitions first, in `fields` order), and the schema."""
    pairs = []
    pinned = []
    for offset, (field_name, field_type) in enumerate(fields.items()):
        pair = _document(
            author, Operation.create(_FIELD_DEFINITION, {"name": field_name, "type": field_type}), first_log + offset
        )
        pairs.append(pair)
        pinned.append(DocumentViewId([Hash.of(pair[0])]))
    definition = Operation.create(
        _SCHEMA_DEFINITION, {"name": name, "description": description, "fields": PinnedRelationList(tuple(pinned))}
    )
    pair = _document(author, definition, first_log + len(fields))
    pairs.append(pair)
    schema_id = SchemaId.application(name, DocumentViewId([Hash.of(pair[0])]))
    return pairs, Schema(schema_id, description, {k: FieldType.parse(v) for k, v in fields.items()})
