"""Building a document from its operations.

Checks, in order (each raises its own `DocumentError`):

- D1 there is at least one operation.
- D2 an operation id appears once (an exact repeat of the same operation is ignored).
- D3 there is exactly one CREATE.
- D4 every operation names the CREATE's schema.
- D5 every previous id is an operation of the document.
- D6 every operation is reachable from the CREATE in the walk (no cycles).
- D7 a requested view id names operations of the document; the view is built from their ancestors.

Reduction (p2panda 0.8): start from the CREATE's fields; every later operation in walk order
overwrites the fields it carries (last write wins per field) and the writer of each field is kept;
a DELETE clears the document and it stays deleted; the view id is the set of graph tips.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

from p2panda.document.errors import (
    DanglingPrevious,
    DuplicateOperation,
    InvalidCreate,
    NoOperations,
    SchemaMismatch,
    UnknownViewTip,
)
from p2panda.document.model import Document
from p2panda.document.walk import walk_order
from p2panda.hash import Hash
from p2panda.identity import PublicKey
from p2panda.ids import DocumentId, DocumentViewId, OperationId
from p2panda.operation.encode import encode_operation
from p2panda.operation.model import Operation, OperationAction
from p2panda.operation.value import OperationValue
from p2panda.schema.schema import Schema, typed_value

__all__ = ["build_document", "ancestors"]

OperationInput = tuple[Hash, PublicKey, Operation]


def _same(a: tuple[PublicKey, Operation], b: tuple[PublicKey, Operation]) -> bool:
    # Compared as bytes when the values differ: a NaN field is not equal to itself.
    return a == b or (a[0] == b[0] and encode_operation(a[1]) == encode_operation(b[1]))


def ancestors(graph: dict[OperationId, list[OperationId]], tips: Iterable[OperationId]) -> set[OperationId]:
    """The tips and every operation they (transitively) follow."""
    seen: set[OperationId] = set()
    stack = list(tips)
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(graph[current])
    return seen


def build_document(
    operations: Iterable[OperationInput],
    view_id: DocumentViewId | None = None,
    schema: Schema | None = None,
) -> Document:
    """Materialise a document (at `view_id` if given). With `schema`, field values come out typed."""
    ops: dict[OperationId, tuple[PublicKey, Operation]] = {}
    for op_id, author, operation in operations:
        key = OperationId(op_id.to_bytes())
        if key in ops:  # D2
            if not _same(ops[key], (author, operation)):
                raise DuplicateOperation(f"operation {key.hex()} given twice with different contents")
            continue
        ops[key] = (author, operation)
    if not ops:  # D1
        raise NoOperations("a document needs at least one operation")

    creates = [k for k, (_, op) in ops.items() if op.action is OperationAction.CREATE]
    if len(creates) != 1:  # D3
        raise InvalidCreate(f"a document has exactly one create operation, found {len(creates)}")
    root = creates[0]
    owner, create = ops[root]
    for key, (_, op) in ops.items():  # D4
        if op.schema_id != create.schema_id:
            raise SchemaMismatch(
                f"operation {key.hex()} names schema {op.schema_id}, the document's is {create.schema_id}"
            )
    graph: dict[OperationId, list[OperationId]] = {}
    for key, (_, op) in ops.items():  # D5
        previous = list(op.previous) if op.previous is not None else []
        for p in previous:
            if p not in ops:
                raise DanglingPrevious(f"operation {key.hex()} names previous {p.hex()} outside the document")
        graph[key] = previous

    if view_id is not None:  # D7
        for tip in view_id:
            if tip not in ops:
                raise UnknownViewTip(f"view id names {tip.hex()}, which is not an operation of the document")
        keep = ancestors(graph, view_id)
        graph = {k: [p for p in v if p in keep] for k, v in graph.items() if k in keep}

    order = walk_order(graph)  # D6

    fields: dict[str, OperationValue] = dict(create.fields or {})
    writers: dict[str, OperationId] = dict.fromkeys(fields, root)
    deleted = False
    for key in order[1:]:
        op = ops[key][1]
        if op.action is OperationAction.DELETE:
            deleted = True
        elif op.fields:
            for name, value in op.fields.items():
                fields[name] = value
                writers[name] = key
    if schema is not None:
        fields = {name: typed_value(name, schema.fields[name], value) for name, value in fields.items()}

    has_children = {p for previous in graph.values() for p in previous}
    tips = [k for k in graph if k not in has_children]
    return Document(
        id=DocumentId(root.to_bytes()),
        view_id=DocumentViewId(tips),
        schema_id=create.schema_id,
        owner=owner,
        fields=None if deleted else MappingProxyType(fields),
        field_writers=MappingProxyType(writers),
        is_deleted=deleted,
        is_edited=any(w != root for w in writers.values()),
        operations=tuple(order),
    )
