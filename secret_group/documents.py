"""The public documents of secret groups, parsed from a document's id, author and fields.

Checks (each raises `MalformedDocument` naming the document and the field):

- D1 every field of the schema is present with its type (a node validated the types; a client of a
  node it does not trust checks again).
- D2 hex fields (`parent`, `added`, `key_packages`, `key_group_tips`) hold lower-case hex ids or keys of
  the right length, space-separated, no repeats.
- D3 `epoch` is not negative; `mode` is "ratchet" or "history".
- D4 a commit that adds members carries a welcome and a handover; one that adds nobody carries neither.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

from p2panda.operation.value import OperationValue, Relation
from secret_group.errors import MalformedDocument

__all__ = ["Mode", "KeyPackageDoc", "GroupDoc", "CommitDoc", "EnvelopeDoc", "join_ids"]

_ID = re.compile(r"0020[0-9a-f]{64}")
_KEY = re.compile(r"[0-9a-f]{64}")


class Mode(enum.Enum):
    RATCHET = "ratchet"
    HISTORY = "history"


def join_ids(ids: tuple[str, ...] | list[str]) -> str:
    return " ".join(ids)


class _Fields:
    """Typed access to one document's fields (D1)."""

    def __init__(self, kind: str, doc_id: str, fields: Mapping[str, OperationValue] | None) -> None:
        if fields is None:
            raise MalformedDocument(f"{kind} {doc_id} is deleted")
        self.kind, self.doc_id, self.fields = kind, doc_id, fields

    def _get(self, name: str, typ: type) -> object:
        value = self.fields.get(name)
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise MalformedDocument(f"{self.kind} {self.doc_id}: field {name} is {value!r}, not {typ.__name__}")
        return value

    def str_(self, name: str) -> str:
        return str(self._get(name, str))

    def bytes_(self, name: str) -> bytes:
        value = self._get(name, bytes)
        assert isinstance(value, bytes)
        return value

    def bool_(self, name: str) -> bool:
        return bool(self._get(name, bool))

    def epoch(self, name: str = "epoch") -> int:  # D3
        value = self._get(name, int)
        assert isinstance(value, int)
        if value < 0:
            raise MalformedDocument(f"{self.kind} {self.doc_id}: {name} {value} is negative")
        return value

    def relation(self, name: str) -> str:
        value = self._get(name, Relation)
        assert isinstance(value, Relation)
        return value.document_id.hex()

    def hex_list(self, name: str, pattern: re.Pattern[str]) -> tuple[str, ...]:  # D2
        text = self.str_(name)
        items = tuple(text.split(" ")) if text else ()
        for item in items:
            if not pattern.fullmatch(item):
                raise MalformedDocument(f"{self.kind} {self.doc_id}: {name} holds {item!r}, not a hex id or key")
        if len(set(items)) != len(items):
            raise MalformedDocument(f"{self.kind} {self.doc_id}: {name} repeats an item")
        return items


@dataclass(frozen=True, slots=True)
class KeyPackageDoc:
    id: str
    author: str
    key_package: bytes
    last_resort: bool

    @classmethod
    def parse(cls, doc_id: str, author: str, fields: Mapping[str, OperationValue] | None) -> KeyPackageDoc:
        f = _Fields("key package", doc_id, fields)
        return cls(doc_id, author, f.bytes_("key_package"), f.bool_("last_resort"))


@dataclass(frozen=True, slots=True)
class GroupDoc:
    id: str
    author: str
    owner: str
    mode: Mode

    @classmethod
    def parse(cls, doc_id: str, author: str, fields: Mapping[str, OperationValue] | None) -> GroupDoc:
        f = _Fields("secret group", doc_id, fields)
        mode = f.str_("mode")
        if mode not in ("ratchet", "history"):  # D3
            raise MalformedDocument(f"secret group {doc_id}: mode {mode!r} is neither ratchet nor history")
        return cls(doc_id, author, f.relation("owner"), Mode(mode))


@dataclass(frozen=True, slots=True)
class CommitDoc:
    id: str
    author: str
    group: str
    parent: str
    epoch: int
    commit: bytes
    welcome: bytes | None
    added: tuple[str, ...]
    key_packages: tuple[str, ...]
    key_group_tips: tuple[str, ...]
    handover: bytes | None

    @classmethod
    def parse(cls, doc_id: str, author: str, fields: Mapping[str, OperationValue] | None) -> CommitDoc:
        f = _Fields("commit", doc_id, fields)
        parent = f.str_("parent")
        if not _ID.fullmatch(parent):  # D2
            raise MalformedDocument(f"commit {doc_id}: parent {parent!r} is not a document id")
        welcome, handover, added = f.bytes_("welcome"), f.bytes_("handover"), f.hex_list("added", _KEY)
        if bool(added) != bool(welcome) or bool(added) != bool(handover):  # D4
            raise MalformedDocument(
                f"commit {doc_id}: adds {len(added)} members with {len(welcome)} bytes of welcome "
                f"and {len(handover)} bytes of handover"
            )
        return cls(
            doc_id,
            author,
            f.relation("group"),
            parent,
            f.epoch(),
            f.bytes_("commit"),
            welcome or None,
            added,
            f.hex_list("key_packages", _ID),
            f.hex_list("key_group_tips", _ID),
            handover or None,
        )


@dataclass(frozen=True, slots=True)
class EnvelopeDoc:
    id: str
    author: str
    group: str
    epoch: int
    ciphertext: bytes

    @classmethod
    def parse(cls, doc_id: str, author: str, fields: Mapping[str, OperationValue] | None) -> EnvelopeDoc:
        f = _Fields("envelope", doc_id, fields)
        return cls(doc_id, author, f.relation("group"), f.epoch(), f.bytes_("ciphertext"))
