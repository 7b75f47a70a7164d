"""Collection queries over current document views: filter, meta filter, order, cursor paging.

The semantics are aquadoggo 0.8.1's (see spec/node-api.md), as measured against it (`make interop`):

- Collections never list deleted documents: aquadoggo keeps no view of a deleted document, so a `deleted`
  meta filter only ever selects among live ones (`{eq: true}` gives none). Unlike aquadoggo, `notEq` is
  honoured (aquadoggo reads `{notEq: b}` as `{eq: b}`).
- Ties in the order are broken by document id, which is also the cursor, so that paging returns each
  document exactly once.
- A relation list asked without `orderBy` keeps the list's order (the order is part of the data, and
  duplicates stay); its cursors are list positions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from p2panda.document import Document
from p2panda.node.errors import NodeError
from p2panda.operation.value import PinnedRelation, PinnedRelationList, Relation, RelationList
from p2panda.schema import FieldKind, Schema

__all__ = ["Page", "QueryError", "select_documents", "page_of"]


class QueryError(NodeError):
    """Collection arguments that cannot be applied (a non-positive page size, an unknown cursor)."""


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    items: list[Document]
    has_next: bool
    cursors: list[str]  # one per item


def _sort_value(doc: Document, order_by: str) -> tuple[int, Any]:
    if order_by == "DOCUMENT_ID":
        return (0, doc.id.hex())
    if order_by == "DOCUMENT_VIEW_ID":
        return (0, str(doc.view_id))
    value = (doc.fields or {}).get(order_by)
    if value is None:
        return (1, "")
    if isinstance(value, Relation):
        return (0, value.document_id.hex())
    if isinstance(value, PinnedRelation):
        return (0, str(value.view_id))
    if isinstance(value, (RelationList, PinnedRelationList)):
        return (0, str(value))
    return (0, value)


def _comparable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Relation):
        return value.document_id.hex()
    if isinstance(value, PinnedRelation):
        return str(value.view_id)
    return value


def _list_ids(value: Any) -> set[str]:
    if isinstance(value, RelationList):
        return {d.hex() for d in value.document_ids}
    if isinstance(value, PinnedRelationList):
        return {str(v) for v in value.view_ids}
    return set()


def _matches(value: Any, conditions: Mapping[str, Any], is_list: bool = False) -> bool:
    if is_list:
        ids = _list_ids(value)
        if "in" in conditions and not ids & set(conditions["in"]):
            return False
        return not ("notIn" in conditions and ids & set(conditions["notIn"]))
    v = _comparable(value)
    checks: dict[str, Callable[[Any], bool]] = {
        "eq": lambda c: v == c,
        "notEq": lambda c: v != c,
        "in": lambda c: v in c,
        "notIn": lambda c: v not in c,
        "gt": lambda c: v > c,
        "gte": lambda c: v >= c,
        "lt": lambda c: v < c,
        "lte": lambda c: v <= c,
        "contains": lambda c: c in v,
        "notContains": lambda c: c not in v,
    }
    return all(checks[op](c) for op, c in conditions.items() if c is not None)


def select_documents(
    docs: list[Document],
    schema: Schema,
    filter_: Mapping[str, Any] | None,
    meta: Mapping[str, Any] | None,
    order_by: str | None,
    direction: str,
    first: int,
    after: str | None,
) -> Page:
    """`order_by` None: keep the order of `docs` (a relation list's), with list positions as cursors."""
    if first <= 0:
        raise QueryError(f"first must be positive, got {first}")
    meta = meta or {}
    selected: list[tuple[str, Document]] = []
    for position, doc in enumerate(docs):
        if doc.is_deleted:
            continue
        meta_values = {
            "documentId": doc.id.hex(),
            "viewId": str(doc.view_id),
            "owner": doc.owner.hex(),
            "edited": doc.is_edited,
            "deleted": doc.is_deleted,
        }
        if not all(_matches(meta_values[k], c) for k, c in meta.items() if c):
            continue
        fields = doc.fields or {}
        if filter_ and any(
            not _matches(
                fields.get(name),
                conditions,
                schema.fields[name].kind in (FieldKind.RELATION_LIST, FieldKind.PINNED_RELATION_LIST),
            )
            for name, conditions in filter_.items()
            if conditions
        ):
            continue
        selected.append((doc.id.hex() if order_by is not None else f"{position}-{doc.id.hex()}", doc))
    if order_by is not None:
        # Ties are broken by document id so that paging is stable.
        selected.sort(key=lambda c: (_sort_value(c[1], order_by), c[1].id.hex()), reverse=direction == "DESC")
    start = 0
    if after:
        cursors = [cursor for cursor, _ in selected]
        if after not in cursors:
            raise QueryError(f'Invalid value for argument "after", expected type "Cursor": unknown cursor {after!r}')
        start = cursors.index(after) + 1
    window = selected[start : start + first]
    return Page(len(selected), [d for _, d in window], start + first < len(selected), [c for c, _ in window])


def page_of(docs: list[Document], schema: Schema, arguments: Mapping[str, Any]) -> Page:
    """Apply the collection arguments (filter, meta, orderBy, orderDirection, first, after)."""
    return select_documents(
        docs,
        schema,
        arguments.get("filter"),
        arguments.get("meta"),
        arguments.get("orderBy", "DOCUMENT_ID"),
        arguments.get("orderDirection", "ASC"),
        arguments.get("first", 25),
        arguments.get("after"),
    )
