"""Operations: vectors decoded and re-encoded byte-for-byte, OP1–OP10 failing, round trips, mutations."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2panda import Hash, P2PandaError
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.operation import (
    InvalidAction,
    InvalidFields,
    InvalidFieldValue,
    InvalidItemCount,
    InvalidOperation,
    InvalidPrevious,
    InvalidSchemaId,
    InvalidVersion,
    MalformedCbor,
    NonCanonicalEncoding,
    NotAnArray,
    Operation,
    OperationError,
    PinnedRelation,
    PinnedRelationList,
    Relation,
    RelationList,
    decode_operation,
    encode_operation,
)
from p2panda.operation.cbor import encode_canonical
from p2panda.schema import SchemaId

from .strategies import mutate, operations

S = "venue_0020c65567ae37efea293e34a9c7d13f8f2bf23dbdc3b5c7b9ab46293111c48fc78b"
H1 = Hash.of(b"1")
H2 = Hash.of(b"2")
LOW, HIGH = sorted([H1, H2])


def _plain(value: Any) -> Any:
    """Decoded plain values in the vectors' JSON form."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Hash):
        return value.hex()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def test_operation_vectors(vectors: dict[str, Any]) -> None:
    for case in vectors["operations"]:
        raw = bytes.fromhex(case["encoded"])
        op = decode_operation(raw)
        expected = case["decoded"]
        assert op.version == expected["version"]
        assert op.action == expected["action"]
        assert str(op.schema_id) == expected["schema_id"]
        if "previous" in expected:
            assert op.previous is not None
            assert [i.hex() for i in op.previous] == expected["previous"]
        assert op.fields is not None
        assert dict(op.fields) == expected["fields"]
        assert encode_operation(op) == raw


def test_entry_vector_operations(vectors: dict[str, Any]) -> None:
    for case in vectors["entries"]:
        if "operation" not in case:
            continue
        raw = bytes.fromhex(case["operation"])
        op = decode_operation(raw)
        assert encode_operation(op) == raw
        assert op.fields is not None
        expected = case["operation_decoded"]["fields"]
        for name, value in op.fields.items():
            want = expected[name]
            got = _plain(value)
            if isinstance(want, dict):
                want = want["bytes_hex"]
            assert got == want, name
        if "operation_hash" in case:
            assert Hash.of(raw).hex() == case["operation_hash"]


def test_all_field_types_encode_from_typed_values(vectors: dict[str, Any]) -> None:
    case = next(c for c in vectors["entries"] if c["name"] == "create_all_field_types")
    f = case["operation_decoded"]["fields"]
    op = Operation.create(
        SchemaId.parse(case["operation_decoded"]["schema_id"]),
        {
            "age": f["age"],
            "comments": PinnedRelationList(tuple(DocumentViewId(map(Hash.from_hex, v)) for v in f["comments"])),
            "data": bytes.fromhex(f["data"]["bytes_hex"]),
            "height": f["height"],
            "is_admin": f["is_admin"],
            "my_friends": RelationList(tuple(DocumentId.from_hex(d) for d in f["my_friends"])),
            "past_event": PinnedRelation(DocumentViewId(map(Hash.from_hex, f["past_event"]))),
            "profile_picture": Relation(DocumentId.from_hex(f["profile_picture"])),
            "username": f["username"],
        },
    )
    assert encode_operation(op).hex() == case["operation"]


def test_float_vectors(vectors: dict[str, Any]) -> None:
    for value, hex_ in vectors["floats"].items():
        assert encode_canonical(float(value)).hex() == hex_


@pytest.mark.parametrize(
    "value, hex_",
    [
        (float("nan"), "f97e00"),
        (-0.0, "f98000"),
        (float("inf"), "f97c00"),
        (1.0e300, "fb7e37e43c8800759c"),
        (100000.0, "fa47c35000"),
        (0.1, "fb3fb999999999999a"),
    ],
)
def test_shortest_floats(value: float, hex_: str) -> None:
    assert encode_canonical(value).hex() == hex_


def _f64(bits: str) -> float:
    return float(struct.unpack(">d", bytes.fromhex(bits))[0])


@pytest.mark.parametrize(
    "bits, hex_",
    [
        # p2panda-rs 0.8.1 keeps a NaN's sign and payload, in the shortest width that keeps them
        ("7ff8000000000000", "f97e00"),
        ("fff8000000000000", "f9fe00"),
        ("7ff8040000000000", "f97e01"),
        ("fffffc0000000000", "f9ffff"),
        ("7ff8000020000000", "fa7fc00001"),
        ("fff8000020000000", "faffc00001"),
        ("7ff8000000000001", "fb7ff8000000000001"),
        # signalling NaNs: narrowing would set the quiet bit, so they stay f64
        ("7ff0000000000001", "fb7ff0000000000001"),
        ("7ff4000000000000", "fb7ff4000000000000"),
    ],
)
def test_nan_bits_kept_in_the_shortest_width(bits: str, hex_: str) -> None:
    encoded = encode_canonical(_f64(bits))
    assert encoded.hex() == hex_
    decoded = decode_operation(_op(1, 0, S, {"a": _f64(bits)})).fields
    assert decoded is not None and struct.pack(">d", decoded["a"]).hex() == bits


@pytest.mark.parametrize("nan", ["f97c01", "fb7ff8000000000000", "fa7fc00000", "fa7f800001"])
def test_nan_in_a_wider_or_signalling_form_is_not_canonical(nan: str) -> None:
    raw = bytes.fromhex("840100") + encode_canonical(S) + bytes.fromhex("a16161" + nan)
    with pytest.raises(NonCanonicalEncoding, match="byte"):
        decode_operation(raw)


def test_map_keys_sorted_by_utf8_bytes_not_length() -> None:
    # p2panda wants "aa" before "b"; RFC 7049 length-first order (cbor2 canonical) would give b, aa.
    assert encode_canonical({"b": 1, "aa": 2}) == bytes.fromhex("a262616102616201")


def _op(*items: Any) -> bytes:
    return encode_canonical(list(items))


# Each of the shared invalid_operations vectors, as bytes, with the error it must raise.
INVALID_VECTORS: list[tuple[str, bytes, type[OperationError], str]] = [
    ("top level must be an array", encode_canonical({}), NotAnArray, "top level must be an array"),
    ("missing version", _op(), InvalidVersion, "missing version"),
    ("unsupported version", _op(100, 0, S, {"a": 1}), InvalidVersion, "unsupported version 100"),
    ("unknown action", _op(1, 100, S, {"a": 1}), InvalidAction, "unknown action 100"),
    ("missing schema id", _op(1, 0), InvalidSchemaId, "missing schema id"),
    ("schema id hash too short", _op(1, 0, "venue_0020", {"a": 1}), InvalidSchemaId, "hash too short"),
    ("malformed schema id", _op(1, 0, "this is not a hash", {"a": 1}), InvalidSchemaId, "malformed schema id"),
    ("previous not sorted", _op(1, 1, S, [HIGH.to_bytes(), LOW.to_bytes()], {"a": 1}), InvalidPrevious, "not sorted"),
    (
        "field name must be text",
        bytes.fromhex("840100") + encode_canonical(S) + bytes.fromhex("a10c6550616e6461"),
        InvalidFields,
        "field name must be text",
    ),
    (
        "field names not sorted",
        bytes.fromhex("840100") + encode_canonical(S) + bytes.fromhex("a2616201616102"),
        InvalidFields,
        "not sorted",
    ),
    ("delete without previous", _op(1, 2, S), InvalidItemCount, "delete without previous"),
    ("create without fields", _op(1, 0, S), InvalidItemCount, "create without fields"),
    ("too many items for delete", _op(1, 2, S, [H1.to_bytes()], {}), InvalidItemCount, "too many items for delete"),
]


def test_every_invalid_vector_has_a_case(vectors: dict[str, Any]) -> None:
    assert sorted(v["why"] for v in vectors["invalid_operations"]) == sorted(c[0] for c in INVALID_VECTORS)


@pytest.mark.parametrize("why, raw, error, message", INVALID_VECTORS, ids=[c[0] for c in INVALID_VECTORS])
def test_invalid_vectors_rejected(why: str, raw: bytes, error: type[OperationError], message: str) -> None:
    with pytest.raises(error, match=message):
        decode_operation(raw)


@pytest.mark.parametrize(
    "raw, error, message",
    [
        (b"", MalformedCbor, "empty"),
        (bytes.fromhex("ff"), MalformedCbor, "not valid cbor"),
        (_op(1, 0, S, {"a": 1}) + b"\x00", MalformedCbor, "1 trailing"),
        (_op(True, 0, S, {"a": 1}), InvalidVersion, "unsigned integer"),
        (_op(1, 0, 5, {"a": 1}), InvalidSchemaId, "must be text"),
        (_op(1, 0, "blob_v2", {"a": 1}), InvalidSchemaId, "unknown system schema"),
        (_op(1, 1, S, [], {"a": 1}), InvalidPrevious, "must not be empty"),
        (_op(1, 1, S, [H1.to_bytes(), H1.to_bytes()], {}), InvalidPrevious, "twice"),
        (_op(1, 1, S, [b"\x00\x20"], {}), InvalidPrevious, "34-byte hash"),
        (_op(1, 1, S, H1.to_bytes(), {}), InvalidPrevious, "must be an array"),
        (_op(1, 0, S, {}), InvalidFields, "at least one field"),
        (_op(1, 0, S, [1]), InvalidFields, "must be a map"),
        (_op(1, 0, S, {"a": {"b": 1}}), InvalidFieldValue, "field 'a'"),
        (_op(1, 0, S, {"a": [1]}), InvalidFieldValue, "field 'a' item 0"),
        (_op(1, 0, S, {"a": [[H1.to_bytes()], H1.to_bytes()]}), InvalidFieldValue, "field 'a'"),
        (_op(1, 0, S, {"a": 2**64 - 1}), InvalidFieldValue, "i64"),
        (bytes.fromhex("840100") + encode_canonical(S) + bytes.fromhex("a16161f6"), InvalidFieldValue, "NoneType"),
        (bytes.fromhex("9f0100") + encode_canonical(S) + bytes.fromhex("a1616101ff"), NonCanonicalEncoding, "byte 0"),
        (bytes.fromhex("84180100") + encode_canonical(S) + bytes.fromhex("a1616101"), NonCanonicalEncoding, "byte 1"),
        (
            bytes.fromhex("840100") + encode_canonical(S) + bytes.fromhex("a16161fb400c000000000000"),
            NonCanonicalEncoding,
            "canonical",
        ),
        (
            bytes.fromhex("840100") + encode_canonical(S) + bytes.fromhex("a2616101616102"),
            NonCanonicalEncoding,
            "canonical",
        ),
    ],
)
def test_strict_decoding(raw: bytes, error: type[OperationError], message: str) -> None:
    with pytest.raises(error, match=message):
        decode_operation(raw)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Operation.create(SchemaId.parse(S), {}), "at least one field"),
        (lambda: Operation("create", SchemaId.parse(S), DocumentViewId([H1]), {"a": 1}), "no previous"),  # type: ignore[arg-type]
        (lambda: Operation("delete", SchemaId.parse(S), DocumentViewId([H1]), {"a": 1}), "no fields"),  # type: ignore[arg-type]
        (lambda: Operation("update", SchemaId.parse(S), None, {"a": 1}), "needs previous"),  # type: ignore[arg-type]
        (lambda: Operation("create", SchemaId.parse(S), None, {"a": 1}, version=2), "version 2"),  # type: ignore[arg-type]
    ],
)
def test_invalid_operation_values_refused(build: Any, message: str) -> None:
    with pytest.raises(InvalidOperation, match=message):
        build()


@settings(max_examples=300)
@given(operations())
def test_random_operations_round_trip(op: Operation) -> None:
    raw = encode_operation(op)
    decoded = decode_operation(raw)
    assert encode_operation(decoded) == raw
    assert decoded.action == op.action and decoded.schema_id == op.schema_id
    assert decoded.previous == op.previous
    if op.fields is not None:
        assert decoded.fields is not None and set(decoded.fields) == set(op.fields)


@settings(max_examples=500)
@given(operations(), st.data())
def test_mutated_or_truncated_operations_raise_only_our_errors(op: Operation, data: st.DataObject) -> None:
    raw = encode_operation(op)
    mutated = mutate(raw, data)
    try:
        decoded = decode_operation(mutated)
    except P2PandaError:
        return
    assert Hash.of(encode_operation(decoded)) != Hash.of(raw)
