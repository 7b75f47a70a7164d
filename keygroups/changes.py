"""Membership changes as key_group_membership document fields, and back (see `schemas.py` for the format).

Sans-IO: fields in, `Change` out. A document that does not parse is a malformed change (it never counts).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from keygroups.errors import MalformedChange
from keygroups.resolve import Action, Change, Level, Member
from p2panda.ids import DocumentId
from p2panda.operation.value import OperationValue, Relation

__all__ = ["change_fields", "change_of", "genesis_of", "parse_member", "relation_id"]

_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_ID = re.compile(r"0020[0-9a-f]{64}\Z")
_CUT = re.compile(r"(0|[1-9][0-9]{0,19}):([1-9][0-9]{0,19})\Z")
_LEVELS = {level.name.lower(): level for level in Level}


def relation_id(value: OperationValue | None) -> str | None:
    """The document id of a relation value, typed (`Relation`) or as decoded without a schema (bytes)."""
    if isinstance(value, Relation):
        return value.document_id.hex()
    if isinstance(value, bytes) and len(value) == 34 and value[:2] == b"\x00\x20":
        return value.hex()
    return None


def parse_member(text: str) -> Member:
    kind, _, ident = text.partition(":")
    if kind == "key" and _HEX64.match(ident):
        return Member.key(ident)
    if kind == "group" and _ID.match(ident):
        return Member.group(ident)
    raise MalformedChange(f"member {text!r} is neither key:<public key hex> nor group:<document id>")


def format_member(member: Member) -> str:
    return f"{member.kind}:{member.id}"


def _str(fields: Mapping[str, OperationValue], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str):
        raise MalformedChange(f"field {name} is missing or not a string")
    return value


def change_of(change_id: str, author: str, fields: Mapping[str, OperationValue]) -> tuple[str, Change]:
    """The key group id and the change a membership document's CREATE fields describe."""
    group = relation_id(fields.get("group"))
    if group is None:
        raise MalformedChange("field group is missing or not a relation")
    action_text = _str(fields, "action")
    try:
        action = Action(action_text)
    except ValueError:
        raise MalformedChange(f"action {action_text!r} is neither add nor remove") from None
    if action is Action.CREATE:
        raise MalformedChange("action create is the key_group document itself, not a membership change")
    member = parse_member(_str(fields, "member"))
    level_text = _str(fields, "level")
    level: Level | None = None
    if action is Action.ADD:
        if level_text not in _LEVELS:
            raise MalformedChange(f"level {level_text!r} is not one of {', '.join(_LEVELS)}")
        level = _LEVELS[level_text]
    elif level_text:
        raise MalformedChange(f"a removal has no level, got {level_text!r}")
    previous = _str(fields, "previous").split()
    if not previous:
        raise MalformedChange("previous names no change")
    for p in previous:
        if not _ID.match(p):
            raise MalformedChange(f"previous {p!r} is not a document id")
    cuts: dict[int, int] = {}
    for cut in _str(fields, "cuts").split():
        m = _CUT.match(cut)
        if m is None or int(m[1]) >= 2**64 or int(m[2]) >= 2**64:
            raise MalformedChange(f"cut {cut!r} is not <log id>:<seq num>")
        if int(m[1]) in cuts:
            raise MalformedChange(f"cuts name log {m[1]} twice")
        cuts[int(m[1])] = int(m[2])
    return group, Change(change_id, author, action, frozenset(previous), member, level, cuts)


def genesis_of(group_id: str, author: str) -> Change:
    """The change a key_group document's CREATE is."""
    return Change(group_id, author, Action.CREATE)


def change_fields(
    group_id: str,
    action: Action,
    member: Member,
    level: Level | None,
    previous: Iterable[str],
    cuts: Mapping[int, int] | None = None,
) -> dict[str, OperationValue]:
    """Fields of the key_group_membership document for a change."""
    if action is Action.CREATE:
        raise MalformedChange("a group is created by its key_group document")
    if (action is Action.ADD) != (level is not None):
        raise MalformedChange("an add names a level and a removal does not")
    ordered = sorted(previous)
    if not ordered:
        raise MalformedChange("previous names no change")
    return {
        "group": Relation(DocumentId.from_hex(group_id)),
        "action": action.value,
        "member": format_member(member),
        "level": "" if level is None else level.name.lower(),
        "previous": " ".join(ordered),
        "cuts": " ".join(f"{log}:{seq}" for log, seq in sorted((cuts or {}).items())),
    }
