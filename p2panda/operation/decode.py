"""Decoding of operations, strict where the Rust reference is lenient.

Checks, in the order they run (each raises its own `OperationError` subclass):

- OP1  the bytes are exactly one well-formed CBOR item (no trailing bytes).
- OP2  the top level is an array.
- OP3  item 0, the version, is the unsigned integer 1.
- OP4  item 1, the action, is 0 (create), 1 (update) or 2 (delete).
- OP5  item 2, the schema id, is text and a valid schema id.
- OP6  the array has exactly the items its action needs: create 4, update 5, delete 4.
- OP7  previous (update, delete) is a non-empty array of 34-byte hashes, sorted ascending, unique.
- OP8  fields (create, update) is a map with text keys sorted by UTF-8 bytes; a create has at least one.
- OP9  every field value is a bool, an i64, a float, text, bytes, an array of 34-byte hashes or an
       array of such arrays.
- OP10 the bytes equal the canonical encoding of what they decode to: definite lengths, shortest
       integer headers and floats, no duplicate keys, no tags. The reference decoder accepts these
       forms; we refuse them because ids are hashes of raw bytes, so two encodings of one operation
       would be two different operations.
"""

from __future__ import annotations

from p2panda.hash import HASH_SIZE, Hash, HashError
from p2panda.ids import DocumentViewId, IdError
from p2panda.operation.cbor import decode_single, encode_canonical
from p2panda.operation.errors import (
    InvalidAction,
    InvalidFields,
    InvalidFieldValue,
    InvalidItemCount,
    InvalidPrevious,
    InvalidSchemaId,
    InvalidVersion,
    NonCanonicalEncoding,
    NotAnArray,
)
from p2panda.operation.model import OPERATION_VERSION, Operation, OperationAction
from p2panda.operation.value import PlainValue
from p2panda.schema.errors import SchemaIdError
from p2panda.schema.id import SchemaId

__all__ = ["decode_operation"]

_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_EXPECTED_ITEMS = {OperationAction.CREATE: 4, OperationAction.UPDATE: 5, OperationAction.DELETE: 4}


def _is_uint(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _hash_item(item: object, what: str, error: type[InvalidPrevious | InvalidFieldValue]) -> Hash:
    if not isinstance(item, bytes) or len(item) != HASH_SIZE:
        raise error(f"{what} must be a {HASH_SIZE}-byte hash, got {_describe(item)}")
    try:
        return Hash(item)
    except HashError as exc:
        raise error(f"{what}: {exc}") from exc


def _describe(value: object) -> str:
    if isinstance(value, bytes):
        return f"{len(value)} bytes"
    return type(value).__name__


def check_version(items: list[object]) -> None:  # OP3
    if len(items) < 1:
        raise InvalidVersion("missing version: the operation array is empty")
    if not _is_uint(items[0]):
        raise InvalidVersion(f"version must be an unsigned integer, got {_describe(items[0])}")
    if items[0] != OPERATION_VERSION:
        raise InvalidVersion(f"unsupported version {items[0]}, only {OPERATION_VERSION} is known")


def check_action(items: list[object]) -> OperationAction:  # OP4
    if len(items) < 2:
        raise InvalidAction("missing action")
    code = items[1]
    if not _is_uint(code) or code not in (0, 1, 2):
        raise InvalidAction(f"unknown action {code!r}: expected 0 (create), 1 (update) or 2 (delete)")
    assert isinstance(code, int)
    return OperationAction.from_code(code)


def check_schema_id(items: list[object]) -> SchemaId:  # OP5
    if len(items) < 3:
        raise InvalidSchemaId("missing schema id")
    text = items[2]
    if not isinstance(text, str):
        raise InvalidSchemaId(f"schema id must be text, got {_describe(text)}")
    try:
        return SchemaId.parse(text)
    except SchemaIdError as exc:
        raise InvalidSchemaId(str(exc)) from exc


def check_item_count(items: list[object], action: OperationAction) -> None:  # OP6
    expected = _EXPECTED_ITEMS[action]
    if len(items) == expected:
        return
    if len(items) > expected:
        raise InvalidItemCount(f"too many items for {action}: {len(items)}, expected {expected}")
    if action is OperationAction.CREATE:
        raise InvalidItemCount("create without fields")
    if action is OperationAction.DELETE:
        raise InvalidItemCount("delete without previous")
    raise InvalidItemCount(f"update needs previous and fields, got {len(items)} items")


def check_previous(value: object) -> DocumentViewId:  # OP7
    if not isinstance(value, list):
        raise InvalidPrevious(f"previous must be an array, got {_describe(value)}")
    if not value:
        raise InvalidPrevious("previous must not be empty")
    hashes = [_hash_item(item, f"previous item {i}", InvalidPrevious) for i, item in enumerate(value)]
    try:
        return DocumentViewId.from_canonical(hashes, "previous")
    except IdError as exc:
        raise InvalidPrevious(str(exc)) from exc


def check_field_value(name: str, value: object) -> PlainValue:  # OP9
    if isinstance(value, (bool, float, str, bytes)):
        return value
    if isinstance(value, int):
        if not _I64_MIN <= value <= _I64_MAX:
            raise InvalidFieldValue(f"field {name!r}: integer {value} is outside the i64 range")
        return value
    if isinstance(value, list):
        if value and all(isinstance(item, list) for item in value):
            return [
                [_hash_item(h, f"field {name!r} item {i}.{j}", InvalidFieldValue) for j, h in enumerate(inner)]
                for i, inner in enumerate(value)
            ]
        return [_hash_item(h, f"field {name!r} item {i}", InvalidFieldValue) for i, h in enumerate(value)]
    raise InvalidFieldValue(f"field {name!r} has a value of a kind no field type has: {_describe(value)}")


def check_fields(value: object, action: OperationAction) -> dict[str, PlainValue]:  # OP8
    if not isinstance(value, dict):
        raise InvalidFields(f"fields must be a map, got {_describe(value)}")
    if action is OperationAction.CREATE and not value:
        raise InvalidFields("a create operation must have at least one field")
    previous: bytes | None = None
    fields: dict[str, PlainValue] = {}
    for name, item in value.items():
        if not isinstance(name, str):
            raise InvalidFields(f"field name must be text, got {name!r}")
        key = name.encode("utf-8")
        if previous is not None and key <= previous:
            raise InvalidFields(f"field names not sorted: {name!r} comes after {previous.decode('utf-8')!r}")
        previous = key
        fields[name] = check_field_value(name, item)
    return fields


def decode_operation(raw: bytes) -> Operation:
    """Decode operation bytes and run checks OP1–OP10."""
    raw = bytes(raw)
    items = decode_single(raw)  # OP1
    if not isinstance(items, list):  # OP2
        raise NotAnArray(f"top level must be an array, got {_describe(items)}")
    check_version(items)
    action = check_action(items)
    schema_id = check_schema_id(items)
    check_item_count(items, action)
    previous = check_previous(items[3]) if action is not OperationAction.CREATE else None
    fields = None
    if action is not OperationAction.DELETE:
        fields = check_fields(items[-1], action)
    canonical = encode_canonical(items)
    if canonical != raw:  # OP10
        at = next(
            (i for i, (a, b) in enumerate(zip(raw, canonical, strict=False)) if a != b), min(len(raw), len(canonical))
        )
        raise NonCanonicalEncoding(
            f"operation is not canonical cbor at byte {at} (indefinite lengths, non-shortest numbers, "
            "duplicate keys and tags are refused)"
        )
    return Operation(action, schema_id, previous, fields)
