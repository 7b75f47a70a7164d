"""Document view ids, schema ids and field types: parse, format, and every rule failing once."""

from __future__ import annotations

import pytest
from hypothesis import given

from p2panda import Hash
from p2panda.ids import DocumentViewId, IdError
from p2panda.schema import FieldKind, FieldType, FieldTypeError, SchemaId, SchemaIdError, SystemSchema

from .strategies import schema_ids, view_ids

H = sorted(Hash.of(bytes([i])) for i in range(3))
MESSAGE = "message_0020d4f2294b7e953e70dd476b5de39d1679ff06a4936bca3ef6fb227e83a126a767"


def test_view_id_sorts_and_dedups_when_built() -> None:
    view = DocumentViewId([H[2], H[0], H[2]])
    assert list(view) == [H[0], H[2]]
    assert str(view) == f"{H[0].hex()}_{H[2].hex()}"
    assert DocumentViewId.from_str(str(view)) == view
    assert DocumentViewId.from_bytes_list(view.to_bytes_list()) == view


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "non-empty"),
        (f"{H[1].hex()}_{H[0].hex()}", "not sorted"),
        (f"{H[0].hex()}_{H[0].hex()}", "twice"),
        (f"{H[0].hex()}_", "68 chars"),
        ("0020zz", "68 chars"),
    ],
)
def test_view_id_strict_parsing(text: str, message: str) -> None:
    with pytest.raises(IdError, match=message):
        DocumentViewId.from_str(text)


def test_empty_view_id_refused() -> None:
    with pytest.raises(IdError):
        DocumentViewId([])


@given(view_ids)
def test_view_id_string_round_trip(view: DocumentViewId) -> None:
    assert DocumentViewId.from_str(str(view)) == view


def test_system_schema_ids() -> None:
    for schema in SystemSchema:
        sid = SchemaId.parse(schema.value)
        assert sid.is_system and sid.system is schema and str(sid) == schema.value


def test_application_schema_id_from_node_flow() -> None:
    sid = SchemaId.parse(MESSAGE)
    assert sid.name == "message" and not sid.is_system
    assert sid.view_id == DocumentViewId.from_str(MESSAGE[len("message_") :])
    assert str(sid) == MESSAGE


def test_application_schema_id_with_underscores_and_several_tips() -> None:
    text = f"my_chat_room_{H[0].hex()}_{H[1].hex()}"
    sid = SchemaId.parse(text)
    assert sid.name == "my_chat_room" and len(sid.view_id or ()) == 2
    assert str(sid) == text


@pytest.mark.parametrize(
    "text, message",
    [
        ("venue_0020", "hash too short"),
        ("this is not a hash", "malformed schema id"),
        ("blob_v7", "unknown system schema"),
        (f"venue_{H[1].hex()}_{H[0].hex()}", "not sorted"),
        (f"_{H[0].hex()}", "does not match"),
        (f"9venue_{H[0].hex()}", "does not match"),
        (f"venue_{H[0].hex().upper()}", "lowercase"),
        (f"venue_{'0120' + H[0].hex()[4:]}", "0x00"),
        (H[0].hex(), "malformed"),
    ],
)
def test_schema_id_rejections(text: str, message: str) -> None:
    with pytest.raises(SchemaIdError, match=message):
        SchemaId.parse(text)


@given(schema_ids)
def test_schema_id_round_trip(sid: SchemaId) -> None:
    assert SchemaId.parse(str(sid)) == sid


@pytest.mark.parametrize("text", ["bool", "int", "float", "str", "bytes"])
def test_primitive_field_types(text: str) -> None:
    ft = FieldType.parse(text)
    assert ft.kind is FieldKind(text) and ft.target is None and str(ft) == text


@pytest.mark.parametrize("kind", ["relation", "relation_list", "pinned_relation", "pinned_relation_list"])
def test_relation_field_types(kind: str) -> None:
    text = f"{kind}({MESSAGE})"
    ft = FieldType.parse(text)
    assert ft.kind.is_relation and ft.target == SchemaId.parse(MESSAGE) and str(ft) == text
    assert str(FieldType.parse(f"{kind}(blob_v1)")) == f"{kind}(blob_v1)"


@pytest.mark.parametrize(
    "text, message",
    [
        ("string", "unknown field type"),
        ("relation()", "unknown field type"),
        ("relation(venue_0020)", "invalid schema"),
        ("Relation(blob_v1)", "unknown field type"),
        ("int ", "unknown field type"),
    ],
)
def test_field_type_rejections(text: str, message: str) -> None:
    with pytest.raises(FieldTypeError, match=message):
        FieldType.parse(text)
