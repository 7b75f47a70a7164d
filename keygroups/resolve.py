"""Resolving a key group from its membership changes, the same way on every node.

A key group is the set of its membership changes. Each change names the changes it causally follows
(`previous`), so the changes form a graph every node sees the same way, whatever order they arrived in.
Resolution is a pure function of that set. Its checks, in order:

- KG1 completeness: a change counts only when every change it names is present and counts as complete;
  otherwise it waits (it is `pending`, not rejected).
- KG2 genesis: the group id is the id of its one CREATE change; the CREATE names no previous change and
  makes its author a manager. Other CREATEs, and changes that do not descend from the genesis, are
  rejected.
- KG3 authority: a change other than the genesis counts only when its author is a manager in the state
  resolved from the change's own causal past (its ancestors that count). Authority is judged on what the
  author had seen, never on changes concurrent to it.
- KG4 strong removal: when a counted change removes a manager or lowers them below manage, every change
  by that manager that is not in the removal's causal past is dropped, and so is every change that
  descends from a dropped one. Two managers removing each other concurrently both lose their changes.
- KG5 order: the surviving changes apply in a deterministic topological order (ancestors first, ties by
  change id). For one member, only the latest changes count (those no other surviving change about the
  member follows); among concurrent latest changes a removal wins, otherwise the lowest level (the
  conservative choice: nobody gains rights from a race).
- KG6 cuts: a removal records, per log of the removed key, the last sequence number the remover accepted.
  When concurrent removals record different cuts for a log, the lowest holds.

Why KG3 + KG4 are safe: a removed manager cannot keep acting by claiming not to have seen their
removal. Anything they did that the remover had not seen is dropped (KG4), and anything they do later
is either in the removal's future (they saw it: KG3 refuses, they are no longer a manager) or
concurrent to it (KG4 drops it).
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["Level", "Action", "Member", "Change", "GroupState", "resolve"]


class Level(enum.IntEnum):
    PULL = 1
    READ = 2
    WRITE = 3
    MANAGE = 4


class Action(enum.Enum):
    CREATE = "create"
    ADD = "add"  # add a member with a level, or change an existing member's level
    REMOVE = "remove"


@dataclass(frozen=True, slots=True, order=True)
class Member:
    """A public key (hex) or another key group (its id)."""

    kind: str  # "key" or "group"
    id: str

    @classmethod
    def key(cls, public_key: str) -> Member:
        return cls("key", public_key)

    @classmethod
    def group(cls, group_id: str) -> Member:
        return cls("group", group_id)


@dataclass(frozen=True, slots=True)
class Change:
    id: str
    author: str  # public key hex
    action: Action
    previous: frozenset[str] = frozenset()
    member: Member | None = None
    level: Level | None = None
    cuts: Mapping[int, int] = field(default_factory=dict)  # REMOVE: log id -> last accepted seq num


@dataclass(frozen=True, slots=True)
class GroupState:
    group_id: str | None
    members: Mapping[Member, Level]
    cuts: Mapping[str, Mapping[int, int]]  # removed key -> log id -> last counted seq num
    counted: frozenset[str]
    pending: frozenset[str]
    rejected: Mapping[str, str]  # change id -> reason (KGn: ...)

    def level_of(self, member: Member) -> Level | None:
        return self.members.get(member)


def _order(changes: Mapping[str, Change]) -> list[str]:
    """Topological order, ties broken by change id."""
    waiting = {cid: len([p for p in c.previous if p in changes]) for cid, c in changes.items()}
    children: dict[str, list[str]] = {cid: [] for cid in changes}
    for cid, c in changes.items():
        for p in c.previous:
            if p in changes:
                children[p].append(cid)
    ready = [cid for cid, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    out = []
    while ready:
        cid = heapq.heappop(ready)
        out.append(cid)
        for child in children[cid]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, child)
    return out


def _apply(
    order: Iterable[str], changes: Mapping[str, Change], ancestors: Mapping[str, frozenset[str]]
) -> tuple[dict[Member, Level], dict[str, dict[int, int]]]:
    """KG5 and KG6 over the given (counted) changes."""
    included = list(order)
    about: dict[Member, list[str]] = {}
    creator: str | None = None
    for cid in included:
        c = changes[cid]
        if c.action is Action.CREATE:
            creator = cid
        elif c.member is not None:
            about.setdefault(c.member, []).append(cid)
    members: dict[Member, Level] = {}
    cuts: dict[str, dict[int, int]] = {}
    if creator is not None:
        members[Member.key(changes[creator].author)] = Level.MANAGE
    for member, ids in about.items():
        latest = [cid for cid in ids if not any(cid in ancestors[other] for other in ids if other != cid)]
        removals = [changes[cid] for cid in latest if changes[cid].action is Action.REMOVE]
        if removals:
            members.pop(member, None)
            if member.kind == "key":
                merged: dict[int, int] = {}
                for r in removals:
                    for log_id, seq in r.cuts.items():
                        merged[log_id] = min(seq, merged.get(log_id, seq))
                cuts[member.id] = merged
        else:
            members[member] = min(changes[cid].level or Level.PULL for cid in latest)
    return members, cuts


def resolve(changes: Iterable[Change]) -> GroupState:
    """The state of the group these changes belong to; see the module documentation for the rules."""
    by_id: dict[str, Change] = {}
    for c in changes:
        by_id.setdefault(c.id, c)
    rejected: dict[str, str] = {}

    # KG1: complete changes only.
    complete: dict[str, Change] = {}
    for cid in _order(by_id):
        c = by_id[cid]
        if all(p in complete for p in c.previous):
            complete[cid] = c
    pending = frozenset(by_id) - frozenset(complete)

    order = _order(complete)
    ancestors: dict[str, frozenset[str]] = {}
    for cid in order:
        acc: set[str] = set()
        for p in complete[cid].previous:
            acc.add(p)
            acc |= ancestors[p]
        ancestors[cid] = frozenset(acc)

    # KG2: one genesis.
    creates = sorted(cid for cid in order if complete[cid].action is Action.CREATE and not complete[cid].previous)
    genesis = creates[0] if creates else None
    for cid in order:
        c = complete[cid]
        if cid == genesis:
            continue
        if c.action is Action.CREATE:
            rejected[cid] = "KG2: a group has one create"
        elif genesis is None or genesis not in ancestors[cid]:
            rejected[cid] = "KG2: does not descend from the group's create"

    # KG3: authority judged on the causal past.
    authorised: list[str] = []
    for cid in order:
        if cid in rejected:
            continue
        c = complete[cid]
        if cid != genesis:
            past = [a for a in authorised if a in ancestors[cid]]  # authorised is in topological order
            members, _ = _apply(past, complete, ancestors)
            if members.get(Member.key(c.author)) != Level.MANAGE:
                rejected[cid] = f"KG3: {c.author} was not a manager in the change's causal past"
                continue
            if c.action in (Action.ADD, Action.REMOVE) and c.member is None:
                rejected[cid] = "KG3: a membership change names a member"
                continue
        authorised.append(cid)

    # KG4: strong removal.
    counted = set(authorised)
    for cid in authorised:
        c = complete[cid]
        demotes = c.action is Action.REMOVE or (c.level is not None and c.level < Level.MANAGE)
        if not demotes or c.member is None or c.member.kind != "key":
            continue
        for other in authorised:
            concurrent = other not in ancestors[cid] and other != cid
            if complete[other].author == c.member.id and concurrent and other in counted:
                counted.discard(other)
                rejected[other] = f"KG4: its author {c.member.id} was removed or demoted by {cid} concurrently"
    for cid in order:
        if cid in counted and any(a not in counted for a in ancestors[cid]):
            counted.discard(cid)
            rejected.setdefault(cid, "KG4: follows a dropped change")

    members, cuts = _apply([cid for cid in order if cid in counted], complete, ancestors)
    return GroupState(genesis, members, cuts, frozenset(counted), pending, rejected)
