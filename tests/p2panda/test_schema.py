"""Schemas: the node_flow schema id, every naming and type rule passing and failing, operation validation."""

from __future__ import annotations

from typing import Any

import pytest

from p2panda import Hash, KeyPair
from p2panda.document import Document, build_document
from p2panda.entry import decode_entry
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.operation import (
    Operation,
    PinnedRelation,
    PinnedRelationList,
    Relation,
    RelationList,
    decode_operation,
)
from p2panda.schema import (
    SYSTEM_SCHEMAS,
    FieldRuleViolation,
    FieldType,
    MissingField,
    Schema,
    SchemaDefinitionError,
    SchemaId,
    SystemSchema,
    UnknownField,
    WrongFieldType,
    schema_from_documents,
    validate_operation,
)

AUTHOR = KeyPair.from_private_key(bytes(32)).public_key
FIELD_DEF = SYSTEM_SCHEMAS[SchemaId.system_schema(SystemSchema.SCHEMA_FIELD_DEFINITION_V1)]
SCHEMA_DEF = SYSTEM_SCHEMAS[SchemaId.system_schema(SystemSchema.SCHEMA_DEFINITION_V1)]
BLOB = SYSTEM_SCHEMAS[SchemaId.system_schema(SystemSchema.BLOB_V1)]
BLOB_PIECE = SYSTEM_SCHEMAS[SchemaId.system_schema(SystemSchema.BLOB_PIECE_V1)]
MESSAGE = "message_0020d4f2294b7e953e70dd476b5de39d1679ff06a4936bca3ef6fb227e83a126a767"
H = [Hash.of(bytes([i])) for i in range(4)]


def test_node_flow_schema_id(vectors: dict[str, Any]) -> None:
    steps = vectors["node_flow"]["steps"]
    docs = []
    for step, schema in zip(steps[:2], [FIELD_DEF, SCHEMA_DEF], strict=True):
        op = decode_operation(bytes.fromhex(step["operation"]))
        validate_operation(op, schema)
        author = decode_entry(bytes.fromhex(step["entry"])).public_key
        docs.append(build_document([(Hash.from_hex(step["entry_hash"]), author, op)], schema=schema))
    schema = schema_from_documents(docs[1], {docs[0].view_id: docs[0]})
    assert str(schema.id) == steps[1]["schema_id"] == MESSAGE
    assert schema.fields == {"message": FieldType.parse("str")}
    assert schema.description == "A simple message"
    create = decode_operation(bytes.fromhex(steps[2]["operation"]))
    assert validate_operation(create, schema) == {"message": "Hello aquadoggo"}


def field_doc(label: str, name: str, type_: str) -> Document:
    op = Operation.create(FIELD_DEF.id, {"name": name, "type": type_})
    return build_document([(Hash.of(label.encode()), AUTHOR, op)], schema=FIELD_DEF)


def definition_doc(name: str, description: str, fields: list[Document]) -> Document:
    value = PinnedRelationList(tuple(f.view_id for f in fields))
    op = Operation.create(SCHEMA_DEF.id, {"name": name, "description": description, "fields": value})
    return build_document([(Hash.of(name.encode() + description.encode()), AUTHOR, op)], schema=SCHEMA_DEF)


def make_schema(name: str = "chat", description: str = "d", fields: list[tuple[str, str]] | None = None) -> Schema:
    docs = [field_doc(f"{i}", n, t) for i, (n, t) in enumerate([("text", "str")] if fields is None else fields)]
    return schema_from_documents(definition_doc(name, description, docs), {d.view_id: d for d in docs})


@pytest.mark.parametrize("name", ["ab", "chat", "Chat_Room_2", "a" * 64])
def test_schema_name_valid(name: str) -> None:
    assert make_schema(name=name).name == name


@pytest.mark.parametrize("name", ["a", "1chat", "chat_", "_chat", "chät", "a" * 65, "chat room"])
def test_schema_name_invalid(name: str) -> None:
    with pytest.raises(SchemaDefinitionError, match="schema name"):
        make_schema(name=name)


def test_description_length() -> None:
    assert make_schema(description="x" * 256).description == "x" * 256
    with pytest.raises(SchemaDefinitionError, match="257 chars"):
        make_schema(description="x" * 257)


def test_field_count() -> None:
    assert len(make_schema(fields=[(f"f{i}", "int") for i in range(1024)]).fields) == 1024
    with pytest.raises(SchemaDefinitionError, match="1 to 1024"):
        make_schema(fields=[(f"f{i}", "int") for i in range(1025)])
    with pytest.raises(SchemaDefinitionError, match="got 0"):
        make_schema(fields=[])


@pytest.mark.parametrize("name", ["a", "A", "a_b", "x1", "a" * 64])
def test_field_name_valid(name: str) -> None:
    assert name in make_schema(fields=[(name, "str")]).fields


@pytest.mark.parametrize("name", ["_a", "1a", "a-b", "a" * 65, ""])
def test_field_name_invalid(name: str) -> None:
    with pytest.raises(SchemaDefinitionError, match="field name"):
        make_schema(fields=[(name, "str")])


@pytest.mark.parametrize(
    "type_",
    [
        "bool",
        "int",
        "float",
        "str",
        "bytes",
        f"relation({MESSAGE})",
        f"relation_list({MESSAGE})",
        f"pinned_relation({MESSAGE})",
        f"pinned_relation_list({MESSAGE})",
        "relation(blob_v1)",
    ],
)
def test_field_types_valid(type_: str) -> None:
    assert str(make_schema(fields=[("f", type_)]).fields["f"]) == type_


@pytest.mark.parametrize("type_", ["string", "i64", "relation", "relation(nope)", "list(str)"])
def test_field_types_invalid(type_: str) -> None:
    with pytest.raises(SchemaDefinitionError):
        make_schema(fields=[("f", type_)])


def test_duplicate_field_names() -> None:
    with pytest.raises(SchemaDefinitionError, match="twice"):
        make_schema(fields=[("f", "str"), ("f", "int")])


def test_missing_field_definition_view() -> None:
    doc = field_doc("x", "f", "str")
    with pytest.raises(SchemaDefinitionError, match="missing"):
        schema_from_documents(definition_doc("chat", "d", [doc]), {})


def test_schema_updates_give_new_ids() -> None:
    fields = [field_doc("0", "text", "str")]
    definition = definition_doc("chat", "d", fields)
    update = Operation.update(SCHEMA_DEF.id, definition.view_id, {"description": "new"})
    ops = [
        (
            definition.operations[0],
            AUTHOR,
            Operation.create(
                SCHEMA_DEF.id,
                {"name": "chat", "description": "d", "fields": PinnedRelationList(tuple(f.view_id for f in fields))},
            ),
        ),
        (Hash.of(b"upd"), AUTHOR, update),
    ]
    updated = build_document(ops, schema=SCHEMA_DEF)
    s1 = schema_from_documents(definition, {f.view_id: f for f in fields})
    s2 = schema_from_documents(updated, {f.view_id: f for f in fields})
    assert s1.id != s2.id and s2.description == "new"


# --- system schema rules through operations -------------------------------------------------------


def test_system_schema_definition_rules() -> None:
    good = {"name": "chat", "description": "d", "fields": [[H[0]]]}
    assert validate_operation(Operation.create(SCHEMA_DEF.id, good), SCHEMA_DEF)
    for bad, message in [
        ({**good, "name": "1x"}, "schema name"),
        ({**good, "description": "x" * 257}, "257 chars"),
        ({**good, "fields": []}, "1 to 1024"),
    ]:
        with pytest.raises(FieldRuleViolation, match=message):
            validate_operation(Operation.create(SCHEMA_DEF.id, bad), SCHEMA_DEF)


def test_system_field_definition_rules() -> None:
    assert validate_operation(Operation.create(FIELD_DEF.id, {"name": "n", "type": "int"}), FIELD_DEF)
    with pytest.raises(FieldRuleViolation, match="field name"):
        validate_operation(Operation.create(FIELD_DEF.id, {"name": "_n", "type": "int"}), FIELD_DEF)
    with pytest.raises(FieldRuleViolation, match="unknown field type"):
        validate_operation(Operation.create(FIELD_DEF.id, {"name": "n", "type": "integer"}), FIELD_DEF)


@pytest.mark.parametrize("mime", ["image/png", "text/plain", "application/vnd.api+json", "audio/x-wav"])
def test_blob_mime_type_valid(mime: str) -> None:
    op = Operation.create(BLOB.id, {"length": 3, "mime_type": mime, "pieces": [[H[0]]]})
    assert validate_operation(op, BLOB)


@pytest.mark.parametrize("mime", ["IMAGE/png", "image", "image/", "/png", "imageimageimage/png"])
def test_blob_mime_type_invalid(mime: str) -> None:
    op = Operation.create(BLOB.id, {"length": 3, "mime_type": mime, "pieces": [[H[0]]]})
    with pytest.raises(FieldRuleViolation, match="mime type"):
        validate_operation(op, BLOB)


def test_blob_pieces_and_piece_size() -> None:
    with pytest.raises(FieldRuleViolation, match="at least one piece"):
        validate_operation(Operation.create(BLOB.id, {"length": 0, "mime_type": "text/plain", "pieces": []}), BLOB)
    assert validate_operation(Operation.create(BLOB_PIECE.id, {"data": b"x" * 256_000}), BLOB_PIECE)
    with pytest.raises(FieldRuleViolation, match="256001 bytes"):
        validate_operation(Operation.create(BLOB_PIECE.id, {"data": b"x" * 256_001}), BLOB_PIECE)


# --- operations against application schemas --------------------------------------------------------

ALL = make_schema(
    "all_types",
    fields=[
        ("b", "bool"),
        ("i", "int"),
        ("f", "float"),
        ("s", "str"),
        ("y", "bytes"),
        ("r", f"relation({MESSAGE})"),
        ("rl", f"relation_list({MESSAGE})"),
        ("p", f"pinned_relation({MESSAGE})"),
        ("pl", f"pinned_relation_list({MESSAGE})"),
    ],
)
VALID: dict[str, Any] = {
    "b": True,
    "i": 3,
    "f": 1.5,
    "s": "x",
    "y": b"\x00",
    "r": H[0].to_bytes(),
    "rl": [H[1], H[1]],
    "p": sorted([H[2], H[3]]),
    "pl": [[H[0]], sorted([H[1], H[2]])],
}


def test_all_types_come_out_typed() -> None:
    typed = validate_operation(Operation.create(ALL.id, VALID), ALL)
    assert typed is not None
    assert typed["r"] == Relation(DocumentId(H[0].to_bytes()))
    assert typed["rl"] == RelationList((DocumentId(H[1].to_bytes()),) * 2)
    assert typed["p"] == PinnedRelation(DocumentViewId([H[2], H[3]]))
    assert typed["pl"] == PinnedRelationList((DocumentViewId([H[0]]), DocumentViewId([H[1], H[2]])))
    assert validate_operation(Operation.create(ALL.id, {**VALID, "rl": [], "pl": []}), ALL) is not None


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("b", 1, "bool"),
        ("i", 1.0, "int"),
        ("i", True, "int"),
        ("f", 1, "float"),
        ("s", b"x", "str"),
        ("y", "x", "bytes"),
        ("r", b"\x00" * 3, "relation"),
        ("r", [H[0]], "relation"),
        ("rl", [[H[0]]], "relation_list"),
        ("p", [], "pinned_relation"),
        ("p", sorted([H[0], H[1]], reverse=True), "not sorted"),
        ("pl", [H[0]], "pinned_relation_list"),
    ],
)
def test_wrong_types_name_field_and_type(field: str, value: Any, expected: str) -> None:
    with pytest.raises(WrongFieldType, match=f"field '{field}'.*{expected}|{expected}"):
        validate_operation(Operation.create(ALL.id, {**VALID, field: value}), ALL)


def test_unknown_and_missing_fields() -> None:
    with pytest.raises(UnknownField, match="'extra'"):
        validate_operation(Operation.create(ALL.id, {**VALID, "extra": 1}), ALL)
    partial = dict(VALID)
    del partial["s"]
    with pytest.raises(MissingField, match="'s' of type str"):
        validate_operation(Operation.create(ALL.id, partial), ALL)
    # updates may carry any subset, deletes none
    assert validate_operation(Operation.update(ALL.id, DocumentViewId([H[0]]), {"s": "y"}), ALL) == {"s": "y"}
    assert validate_operation(Operation.update(ALL.id, DocumentViewId([H[0]]), {}), ALL) == {}
    assert validate_operation(Operation.delete(ALL.id, DocumentViewId([H[0]])), ALL) is None


def test_operation_for_another_schema() -> None:
    with pytest.raises(UnknownField, match="not"):
        validate_operation(Operation.create(FIELD_DEF.id, {"name": "n", "type": "int"}), ALL)
