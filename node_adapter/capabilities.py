"""What a remote node's GraphQL API offers, learned once by introspection.

A stock aquadoggo 0.8 serves `nextArgs`, `publish`, `S` and `all_S`, with `DocumentMeta { documentId
viewId owner }` and no subscriptions. Our node adds `DocumentMeta.edited` / `.deleted`, `logHeights`,
`operationStatus` and the `documentChanged` subscription. `RemoteNode` asks only for what is here and
falls back (or says which verb cannot work and why) for what is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Capabilities", "INTROSPECTION", "capabilities_of", "permissioned_schemas", "SCHEMA_TYPES"]

INTROSPECTION = (
    "query Capabilities { __schema { queryType { fields { name } } subscriptionType { fields { name } } } "
    'meta: __type(name: "DocumentMeta") { fields { name } } }'
)

# Every object type with its fields' type names: which schemas have an `owner` relation to key groups.
SCHEMA_TYPES = "query SchemaTypes { __schema { types { name fields { name type { name kind } } } } }"


@dataclass(frozen=True, slots=True)
class Capabilities:
    queries: frozenset[str]
    subscriptions: frozenset[str]
    meta_fields: frozenset[str]

    @property
    def has_log_heights(self) -> bool:
        return "logHeights" in self.queries

    @property
    def has_operation_status(self) -> bool:
        return "operationStatus" in self.queries

    @property
    def has_changes(self) -> bool:
        return "documentChanged" in self.subscriptions

    @property
    def materialises_before_answering(self) -> bool:
        """Our node (the one with `operationStatus`) materialises an operation before it answers
        `publish`; aquadoggo answers first and materialises from a task queue."""
        return self.has_operation_status

    @property
    def pages_over_equal_values(self) -> bool:
        """aquadoggo 0.8.1 skips and repeats documents when it pages a collection ordered by a field with
        equal values and the query selects more than that field; our node (with `operationStatus`) does not."""
        return self.has_operation_status

    @property
    def meta_selection(self) -> str:
        extra = [f for f in ("edited", "deleted") if f in self.meta_fields]
        return " ".join(["documentId", "viewId", "owner", *extra])


def _names(raw: Mapping[str, Any] | None) -> frozenset[str]:
    if raw is None:
        return frozenset()
    return frozenset(str(f["name"]) for f in raw.get("fields") or [])


def capabilities_of(data: Mapping[str, Any]) -> Capabilities:
    """From the answer to `INTROSPECTION`; raises KeyError/TypeError on a malformed answer."""
    schema = data["__schema"]
    return Capabilities(_names(schema["queryType"]), _names(schema.get("subscriptionType")), _names(data.get("meta")))


def permissioned_schemas(data: Mapping[str, Any], key_group: str, owner_field: str) -> list[str]:
    """Schema ids whose documents a key group owns (a field `owner_field` whose GraphQL type is the key group
    schema's document type), from the answer to `SCHEMA_TYPES`."""
    found = []
    for t in data["__schema"]["types"]:
        name = str(t["name"])
        if not name.endswith("Fields"):
            continue
        for f in t.get("fields") or []:
            if f["name"] == owner_field and f["type"]["name"] == key_group:
                found.append(name.removesuffix("Fields"))
    return sorted(found)
