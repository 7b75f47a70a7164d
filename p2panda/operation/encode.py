"""Operation encoding: `[1, action, schema_id, (previous), (fields)]` in canonical CBOR."""

from __future__ import annotations

from p2panda.operation.cbor import encode_canonical
from p2panda.operation.model import Operation
from p2panda.operation.value import to_cbor

__all__ = ["encode_operation"]


def encode_operation(operation: Operation) -> bytes:
    items: list[object] = [operation.version, operation.action.code, str(operation.schema_id)]
    if operation.previous is not None:
        items.append(operation.previous.to_bytes_list())
    if operation.fields is not None:
        items.append({name: to_cbor(value) for name, value in operation.fields.items()})
    return encode_canonical(items)  # type: ignore[arg-type]
