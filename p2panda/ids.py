"""Identifiers: operation id, document id, document view id.

- An operation id is the hash of the signed entry that carries the operation.
- A document id is the id of its CREATE operation.
- A document view id is the set of graph tips: operation ids sorted by bytes (= lowercase hex order),
  unique and non-empty; its string form joins the hex ids with `_`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence

from p2panda.errors import P2PandaError
from p2panda.hash import HASH_SIZE, Hash, HashError

__all__ = ["OperationId", "DocumentId", "DocumentViewId", "IdError"]


class IdError(P2PandaError):
    """A malformed operation id, document id or document view id."""


class OperationId(Hash):
    """The hash of the entry that carries an operation."""

    __slots__ = ()


class DocumentId(Hash):
    """The operation id of a document's CREATE operation."""

    __slots__ = ()


class DocumentViewId:
    """A non-empty, sorted, duplicate-free set of operation ids (the tips of a document graph)."""

    __slots__ = ("_ids",)
    _ids: tuple[OperationId, ...]

    def __init__(self, ids: Iterable[Hash]) -> None:
        """Build from any ids: sorts and de-duplicates. Use `from_canonical` to check wire input."""
        unique = sorted({OperationId(i.to_bytes()) for i in ids})
        if not unique:
            raise IdError("document view id must contain at least one operation id")
        object.__setattr__(self, "_ids", tuple(unique))

    @classmethod
    def from_canonical(cls, ids: Sequence[Hash], what: str = "document view id") -> DocumentViewId:
        """Accept `ids` only if already sorted ascending and unique (the only form on the wire)."""
        if not ids:
            raise IdError(f"{what} must not be empty")
        for a, b in itertools.pairwise(ids):
            if a == b:
                raise IdError(f"{what} contains {a.hex()} twice")
            if b < a:
                raise IdError(f"{what} is not sorted: {b.hex()} comes after {a.hex()}")
        view = object.__new__(cls)
        object.__setattr__(view, "_ids", tuple(OperationId(i.to_bytes()) for i in ids))
        return view

    @classmethod
    def from_bytes_list(cls, items: Sequence[bytes], what: str = "document view id") -> DocumentViewId:
        hashes: list[Hash] = []
        for index, item in enumerate(items):
            if not isinstance(item, bytes) or len(item) != HASH_SIZE:
                raise IdError(f"{what} item {index} must be a {HASH_SIZE}-byte hash")
            try:
                hashes.append(Hash(item))
            except HashError as exc:
                raise IdError(f"{what} item {index}: {exc}") from exc
        return cls.from_canonical(hashes, what)

    @classmethod
    def from_str(cls, text: str) -> DocumentViewId:
        """Parse the `_`-joined form; strict: sorted and unique as every node writes it."""
        if not isinstance(text, str) or not text:
            raise IdError(f"document view id must be a non-empty string, got {text!r}")
        try:
            hashes = [Hash.from_hex(part) for part in text.split("_")]
        except HashError as exc:
            raise IdError(f"document view id {text!r}: {exc}") from exc
        return cls.from_canonical(hashes)

    @property
    def ids(self) -> tuple[OperationId, ...]:
        return self._ids

    def to_bytes_list(self) -> list[bytes]:
        return [i.to_bytes() for i in self._ids]

    def view_hash(self) -> Hash:
        """hash(concatenation of the sorted tips' 34-byte binary hashes)."""
        return Hash.of(b"".join(i.to_bytes() for i in self._ids))

    def __iter__(self) -> Iterator[OperationId]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def __str__(self) -> str:
        return "_".join(i.hex() for i in self._ids)

    def __repr__(self) -> str:
        return f"DocumentViewId({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DocumentViewId) and other._ids == self._ids

    def __lt__(self, other: DocumentViewId) -> bool:
        return str(self) < str(other)

    def __hash__(self) -> int:
        return hash(self._ids)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("DocumentViewId is immutable")
