"""The key-group policy the node applies when materialising (see `p2panda.node.policy`): who may write.

Checks, as `Node.operation_status` reports them:

- P1 owner: a permissioned document (see `schemas.is_permissioned`) belongs to the key group its CREATE
  names in `owner`. While that group is not known here (its key_group document has not arrived), none of
  the document's operations count; they count once it arrives.
- P2 fixed owner: an UPDATE that sets `owner` to another group does not count.
- P3 writers: an operation counts when its author has write level or more in the owner group (members of
  nested groups included, N1-N3), or when its entry is within the author's cut for that log (KG6): what
  a key wrote before a manager removed it (or lowered it below write) and the manager had seen.
- P4 group documents: a key_group document's CREATE counts (it is the group's genesis); its UPDATEs and
  DELETE count when their author manages the group.

Nested groups, when the members of a group are listed for writing or reading:

- N1 a member group's keys count at the lowest of: their level in the member group, the level given to
  the member group, and write. Managing a group needs direct membership, so that each change's authority
  is judged within one group's own change graph (KG3).
- N2 depth: member groups are followed at most `MAX_DEPTH` levels down.
- N3 cycles: a member group that contains, directly or not, a group on the path to it is not followed.

A key reached along several paths gets the highest level any of them gives, and per log the highest cut.

key_group_membership documents are not governed: they are claims, and resolution (KG1-KG6) decides which
count. Every node, ours or a stock p2panda 0.8 one, serves all of them, so any client resolving them gets
the state this policy acts on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from keygroups.changes import change_of, genesis_of, relation_id
from keygroups.errors import MalformedChange
from keygroups.resolve import Change, GroupState, Level, Member, Resolver
from keygroups.schemas import KEY_GROUP, MEMBERSHIP, OWNER_FIELD, is_permissioned
from p2panda.ids import DocumentId
from p2panda.node.policy import Written
from p2panda.node.store import Store
from p2panda.operation import OperationAction, decode_operation
from p2panda.operation.cbor import encode_canonical
from p2panda.operation.value import Relation, to_cbor
from p2panda.schema import Schema

__all__ = ["MAX_DEPTH", "Access", "KeyGroupPolicy", "flatten"]

MAX_DEPTH = 4

StateOf = Callable[[str], GroupState | None]


@dataclass(frozen=True, slots=True)
class Access:
    """A group's keys with their levels (nested groups flattened) and the cuts of keys that cannot write."""

    group_id: str
    levels: Mapping[str, Level]
    cuts: Mapping[str, Mapping[int, int]]

    def refusal(self, public_key: str, log_id: int, seq_num: int) -> str | None:
        """P3: None when this entry's author may write here, else why not."""
        level = self.levels.get(public_key)
        if level is not None and level >= Level.WRITE:
            return None
        cut = self.cuts.get(public_key, {}).get(log_id)
        if cut is not None and seq_num <= cut:
            return None
        if cut is not None:
            return f"P3: entry {seq_num} of log {log_id} by {public_key} is past its cut {cut} in key group {self.group_id}"
        if level is None:
            return f"P3: {public_key} is not a member of key group {self.group_id}"
        return f"P3: {public_key} has level {level.name.lower()} in key group {self.group_id}, below write"


def flatten(group_id: str, state_of: StateOf, depth: int = 0, path: frozenset[str] = frozenset()) -> Access | None:
    """N1-N3: a group's keys and levels with its member groups followed; None when the group is unknown."""
    state = state_of(group_id)
    if state is None or state.group_id is None:
        return None
    levels: dict[str, Level] = {}
    cuts: dict[str, dict[int, int]] = {key: dict(c) for key, c in state.cuts.items()}
    for member, level in state.members.items():
        if member.kind == "key":
            levels[member.id] = max(level, levels.get(member.id, level))
            continue
        if depth + 1 > MAX_DEPTH or member.id in path or member.id == group_id:  # N2, N3
            continue
        inner = flatten(member.id, state_of, depth + 1, path | {group_id})
        if inner is None:
            continue
        for key, inner_level in inner.levels.items():
            effective = min(level, inner_level, Level.WRITE)  # N1
            levels[key] = max(effective, levels.get(key, effective))
        for key, inner_cuts in inner.cuts.items():
            merged = cuts.setdefault(key, {})
            for log_id, seq in inner_cuts.items():
                merged[log_id] = max(seq, merged.get(log_id, seq))
    return Access(group_id, levels, cuts)


def _relation_cbor(document_id: str) -> bytes:
    return encode_canonical(to_cbor(Relation(DocumentId.from_hex(document_id))))


class _Group:
    """One group's resolver and the membership documents that do not parse."""

    __slots__ = ("malformed", "resolver")

    def __init__(self, resolver: Resolver, malformed: dict[str, str]) -> None:
        self.resolver = resolver
        self.malformed = malformed


class KeyGroupPolicy:
    """Plugged into a node (`NodeConfig(policy=KeyGroupPolicy())`). Resolved groups are cached, filled
    and updated only from the writer's transaction; readers use the cache or resolve uncached."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: dict[str, _Group] = {}

    # --- the node's Policy protocol -----------------------------------------------------------------

    def governs(self, schema: Schema) -> bool:
        return str(schema.id) == KEY_GROUP or is_permissioned(schema)

    def refusals(
        self, store: Store, schema: Schema, operations: Sequence[Written], *, writing: bool
    ) -> Mapping[str, str]:
        create = next((w for w in operations if w.operation.action is OperationAction.CREATE), None)
        if create is None:
            return {}
        refused: dict[str, str] = {}
        if str(schema.id) == KEY_GROUP:
            state = self.state(store, create.id, writing=writing)
            for w in operations:
                if w is create:
                    continue
                if state is None or state.members.get(Member.key(w.public_key)) != Level.MANAGE:
                    refused[w.id] = f"P4: {w.public_key} does not manage key group {create.id}"
            return refused
        group_id = relation_id((create.operation.fields or {}).get(OWNER_FIELD))
        assert group_id is not None  # the schema says so, and the node validated the operation
        access = flatten(group_id, lambda g: self.state(store, g, writing=writing))
        for w in operations:
            if access is None:
                refused[w.id] = f"P1: key group {group_id} is not known here"
                continue
            new_owner = relation_id((w.operation.fields or {}).get(OWNER_FIELD))
            if new_owner is not None and new_owner != group_id:
                refused[w.id] = f"P2: the owner of a document stays key group {group_id}"
                continue
            reason = access.refusal(w.public_key, w.log_id, w.seq_num)
            if reason is not None:
                refused[w.id] = reason
        return refused

    def accepted(self, store: Store, written: Written) -> Iterable[str]:
        schema_id = str(written.operation.schema_id)
        if schema_id == MEMBERSHIP and written.operation.action is OperationAction.CREATE:
            try:
                group_id, change = change_of(written.id, written.public_key, written.operation.fields or {})
            except MalformedChange:
                return ()
            return self._changed(store, group_id, change)
        if schema_id == KEY_GROUP and written.operation.action is OperationAction.CREATE:
            return self._changed(store, written.id, None)
        return ()

    def reset(self) -> None:
        with self._lock:
            self._groups.clear()

    # --- resolution -------------------------------------------------------------------------------

    def state(self, store: Store, group_id: str, *, writing: bool = False) -> GroupState | None:
        """A group's resolved state; None when no key_group document of that id is stored."""
        with self._lock:
            cached = self._groups.get(group_id)
        if cached is not None:
            return cached.resolver.state
        group = self._load(store, group_id)
        if group is None:
            return None
        if writing:
            with self._lock:
                self._groups[group_id] = group
        return group.resolver.state

    def _load(self, store: Store, group_id: str) -> _Group | None:
        genesis = next(
            (o for o in store.operations_of_document(group_id) if o.id == group_id and o.schema_id == KEY_GROUP),
            None,
        )
        if genesis is None:
            return None
        changes: list[Change] = [genesis_of(group_id, genesis.public_key)]
        malformed: dict[str, str] = {}
        for o in store.operations_with_field("group", _relation_cbor(group_id), MEMBERSHIP):
            if o.id != o.document_id:
                continue  # membership documents are never updated: only their CREATE is a change
            try:
                _, change = change_of(o.id, o.public_key, decode_operation(o.payload).fields or {})
            except MalformedChange as exc:
                malformed[o.id] = str(exc)
                continue
            changes.append(change)
        return _Group(Resolver(changes), malformed)

    def _changed(self, store: Store, group_id: str, change: Change | None) -> list[str]:
        """M4 for a stored membership change (or a group's genesis): the documents to re-materialise."""
        with self._lock:
            cached = self._groups.get(group_id)
        if cached is not None and change is not None:
            before = cached.resolver.state
            after = cached.resolver.add(change)
            if before.members == after.members and before.cuts == after.cuts:
                return []
        else:
            group = self._load(store, group_id)
            if group is None:
                return []
            with self._lock:
                self._groups[group_id] = group
        # Levels changed: the documents this group owns, and those of every group it is (transitively) a
        # member of, are judged again.
        affected: list[str] = []
        seen: set[str] = set()
        todo = [group_id]
        while todo:
            gid = todo.pop()
            if gid in seen:
                continue
            seen.add(gid)
            cbor = _relation_cbor(gid)
            affected += [o.document_id for o in store.operations_with_field(OWNER_FIELD, cbor) if o.id == o.document_id]
            member = f"group:{gid}"
            for o in store.operations_with_field("member", encode_canonical(member), MEMBERSHIP):
                parent = relation_id((decode_operation(o.payload).fields or {}).get("group"))
                if parent is not None:
                    todo.append(parent)
        return affected
