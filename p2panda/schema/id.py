"""Schema ids: system schemas (`<name>_v<version>`) and application schemas (`<name>_<view id>`).

Parsing goes from the right: a last `_`-separated part that starts with `v` and is shorter than 68 chars
is a system version; otherwise 68-char hashes are peeled off the right while what remains is at least
68 chars long, and the rest is the name.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Final

from p2panda.hash import HASH_SIZE, Hash, HashError
from p2panda.ids import DocumentViewId, IdError
from p2panda.schema.errors import SchemaIdError

__all__ = ["SchemaId", "SystemSchema", "SCHEMA_NAME_RE"]

SCHEMA_NAME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}[A-Za-z0-9]")
_HASH_HEX_LEN: Final = 2 * HASH_SIZE
_HEX_RE: Final = re.compile(r"[0-9a-f]+")


class SystemSchema(Enum):
    """The system schemas of p2panda 0.8, by their id string."""

    SCHEMA_DEFINITION_V1 = "schema_definition_v1"
    SCHEMA_FIELD_DEFINITION_V1 = "schema_field_definition_v1"
    BLOB_V1 = "blob_v1"
    BLOB_PIECE_V1 = "blob_piece_v1"


class SchemaId:
    """A parsed schema id. Exactly one of `system` and `view_id` is set."""

    __slots__ = ("_name", "_system", "_view_id")
    _name: str
    _system: SystemSchema | None
    _view_id: DocumentViewId | None

    def __init__(self, name: str, *, view_id: DocumentViewId | None = None, system: SystemSchema | None = None):
        if (view_id is None) == (system is None):
            raise SchemaIdError("a schema id is either a system schema or an application schema with a view id")
        if view_id is not None and not SCHEMA_NAME_RE.fullmatch(name):
            raise SchemaIdError(f"schema name {name!r} does not match {SCHEMA_NAME_RE.pattern}")
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_system", system)
        object.__setattr__(self, "_view_id", view_id)

    @classmethod
    def system_schema(cls, schema: SystemSchema) -> SchemaId:
        return cls(schema.value.rsplit("_", 1)[0], system=schema)

    @classmethod
    def application(cls, name: str, view_id: DocumentViewId) -> SchemaId:
        return cls(name, view_id=view_id)

    @classmethod
    def parse(cls, text: str) -> SchemaId:
        if not isinstance(text, str):
            raise SchemaIdError(f"schema id must be a string, got {type(text).__name__}")
        if "_" not in text:
            raise SchemaIdError(f"malformed schema id {text!r}: expected <name>_<version> or <name>_<view id>")
        head, last = text.rsplit("_", 1)
        if last.startswith("v") and len(last) < _HASH_HEX_LEN:
            try:
                return cls.system_schema(SystemSchema(text))
            except ValueError:
                raise SchemaIdError(f"unknown system schema {text!r}") from None
        hashes: list[Hash] = []
        rest = text
        while len(rest) >= _HASH_HEX_LEN and "_" in rest:
            head, part = rest.rsplit("_", 1)
            if len(part) != _HASH_HEX_LEN:
                break
            try:
                hashes.append(Hash.from_hex(part))
            except HashError as exc:
                raise SchemaIdError(f"malformed schema id {text!r}: {exc}") from exc
            rest = head
        if not hashes:
            if _HEX_RE.fullmatch(last) and len(last) < _HASH_HEX_LEN:
                raise SchemaIdError(f"schema id hash too short in {text!r}: {len(last)} of {_HASH_HEX_LEN} hex chars")
            raise SchemaIdError(f"malformed schema id {text!r}: no view id hash after the name")
        hashes.reverse()
        try:
            view_id = DocumentViewId.from_canonical(hashes, f"view id of schema id {text!r}")
        except IdError as exc:
            raise SchemaIdError(str(exc)) from exc
        return cls(rest, view_id=view_id)

    @property
    def name(self) -> str:
        return self._name

    @property
    def system(self) -> SystemSchema | None:
        return self._system

    @property
    def view_id(self) -> DocumentViewId | None:
        return self._view_id

    @property
    def is_system(self) -> bool:
        return self._system is not None

    def __str__(self) -> str:
        if self._system is not None:
            return self._system.value
        return f"{self._name}_{self._view_id}"

    def __repr__(self) -> str:
        return f"SchemaId({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SchemaId) and str(other) == str(self)

    def __hash__(self) -> int:
        return hash(str(self))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("SchemaId is immutable")
