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
  resolved from the change's own causal past (its ancestors that count in the resolution, KG1-KG6, of
  just those ancestors: a grant that is itself dropped or refused there gives no authority). Authority is
  judged on what the author had seen, never on changes concurrent to it.
- KG4 strong removal: when a change that passes KG1-KG3 removes a key or lowers it below manage, every
  change by that key that is concurrent to the removal (neither in its causal past nor following it) is
  dropped, and so is every change that descends from a change that does not count (dropped or refused). A change that follows the removal
  was made after a re-add and is judged by KG3 like any other. Two managers removing each other concurrently both lose their changes.
- KG5 order: the surviving changes apply in a deterministic topological order (ancestors first, ties by
  change id). For one member, only the latest changes count (those no other surviving change about the
  member follows); among concurrent latest changes a removal wins, otherwise the lowest level (the
  conservative choice: nobody gains rights from a race).
- KG6 cuts: a removal (or a change of level below write) records, per log of the key, the last sequence
  number the manager accepted. A key that cannot write now keeps, as writes that count, exactly its
  entries up to those cuts; when concurrent changes record different cuts for a log, the lowest holds.

Why KG3 + KG4 are safe: a removed manager cannot keep acting by claiming not to have seen their
removal. Anything they did that the remover had not seen is dropped (KG4), and anything they do later
is either in the removal's future (they saw it: KG3 refuses, they are no longer a manager) or
concurrent to it (KG4 drops it). Why cuts are safe: Bamboo gives each of the key's logs a total order
and forks are refused, so "entries up to seq n of log l" is the same set on every node; a removed writer
cannot add an entry below a cut (that seq is taken) and every entry above it is refused everywhere,
whenever it arrives. A key re-added later writes again from its new membership on; that is the
manager's decision to trust it again.

Cost: ancestor sets are bitsets (Python ints), so a full resolution is about linear in the number of
changes for histories that are mostly sequential. `Resolver.add` appends a change that follows every
counted change (the usual case: a manager acting on the state they see) without re-resolving; any other
arrival (late, concurrent, completing a pending change) resolves the whole set again.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["Level", "Action", "Member", "Change", "GroupState", "Resolver", "resolve"]


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
    tips: frozenset[str] = frozenset()  # counted changes no counted change follows: a new change's previous

    def level_of(self, member: Member) -> Level | None:
        return self.members.get(member)

    def status(self, change_id: str) -> str | None:
        """None when the change counts, else why not."""
        if change_id in self.counted:
            return None
        if change_id in self.pending:
            return "KG1: waits for a change it names"
        return self.rejected.get(change_id, "unknown change")


def _order(changes: Mapping[str, Change]) -> list[str]:
    """Topological order, ties broken by change id."""
    waiting = {cid: sum(1 for p in c.previous if p in changes) for cid, c in changes.items()}
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


def _demotes(c: Change) -> bool:
    return c.action is Action.REMOVE or (c.level is not None and c.level < Level.MANAGE)


def _cut_of(member: Member, level: Level | None, latest: Sequence[Change]) -> dict[int, int] | None:
    """KG6: the cuts a key keeps when it cannot write (None when it can, or is a group)."""
    if member.kind != "key" or (level is not None and level >= Level.WRITE):
        return None
    merged: dict[int, int] = {}
    for c in latest:
        for log_id, seq in c.cuts.items():
            merged[log_id] = min(seq, merged.get(log_id, seq))
    return merged


class Resolver:
    """Resolution kept up to date as changes arrive; `state` equals `resolve(all changes added)`."""

    def __init__(self, changes: Iterable[Change] = ()) -> None:
        self._changes: dict[str, Change] = {}
        for c in changes:
            self._changes.setdefault(c.id, c)
        self._bit: dict[str, int] = {}
        self._ancestors: dict[str, int] = {}  # bitset over `_bit`
        self._members: dict[Member, Level] = {}
        self._cuts: dict[str, dict[int, int]] = {}
        self._all_counted = True  # every authorised change counts (no KG4 drop)
        self.state = self._resolve()

    def __len__(self) -> int:
        return len(self._changes)

    def add(self, change: Change) -> GroupState:
        if change.id in self._changes:
            return self.state
        self._changes[change.id] = change
        if self._appends(change):
            self.state = self._append(change)
        else:
            self.state = self._resolve()
        return self.state

    def _appends(self, c: Change) -> bool:
        state = self.state
        return (
            self._all_counted
            and not state.pending
            and state.group_id is not None
            and c.action is not Action.CREATE
            and bool(c.previous)
            and c.previous <= state.counted
            and state.tips <= c.previous
        )

    def _append(self, c: Change) -> GroupState:
        """A change that follows every counted change, when every authorised change counts: its causal past
        is the whole current state, so KG3 judges it on that, and KG4 has nothing concurrent to drop."""
        state = self.state
        bit = 1 << len(self._bit)
        self._bit[c.id] = bit
        acc = 0
        for p in c.previous:
            acc |= self._ancestors[p] | self._bit[p]
        self._ancestors[c.id] = acc
        reason = self._authority(c, self._members)
        if reason is not None:
            return GroupState(
                state.group_id,
                state.members,
                state.cuts,
                state.counted,
                state.pending,
                {**state.rejected, c.id: reason},
                state.tips,
            )
        assert c.member is not None
        if c.action is Action.REMOVE:
            self._members.pop(c.member, None)
        else:
            self._members[c.member] = c.level or Level.PULL
        cut = _cut_of(c.member, self._members.get(c.member), [c])
        if cut is None:
            self._cuts.pop(c.member.id, None)
        else:
            self._cuts[c.member.id] = cut
        return GroupState(
            state.group_id,
            dict(self._members),
            dict(self._cuts),
            state.counted | {c.id},
            state.pending,
            state.rejected,
            frozenset({c.id}),
        )

    @staticmethod
    def _authority(c: Change, members: Mapping[Member, Level]) -> str | None:
        if members.get(Member.key(c.author)) != Level.MANAGE:
            return f"KG3: {c.author} was not a manager in the change's causal past"
        if c.action in (Action.ADD, Action.REMOVE) and c.member is None:
            return "KG3: a membership change names a member"
        return None

    def _past_level(
        self,
        c: Change,
        past: int,
        about: Mapping[Member, Sequence[str]],
        tainted: int,
        hits: Sequence[tuple[int, int]],
        complete: Mapping[str, Change],
        genesis: str | None,
    ) -> Level | None:
        """KG3: the author's level in the resolution of the change's causal past (`past`, a bitset)."""
        ancestors, bits = self._ancestors, self._bit
        dropped = [hit for demotion, hit in hits if past & demotion and past & hit]
        seen = [
            a
            for a in about.get(Member.key(c.author), ())
            if past & bits[a]
            and not ancestors[a] & tainted
            and not any((ancestors[a] | bits[a]) & hit for hit in dropped)
        ]
        if seen:
            return self._latest_level([complete[a] for a in self._latest(seen)])
        return Level.MANAGE if genesis is not None and complete[genesis].author == c.author else None

    def _latest(self, ids: Sequence[str]) -> list[str]:
        """KG5: the changes among `ids` (about one member) that none of the others follows."""
        ancestors, bits = self._ancestors, self._bit
        return [cid for cid in ids if not any(ancestors[other] & bits[cid] for other in ids if other != cid)]

    @staticmethod
    def _latest_level(latest: Sequence[Change]) -> Level | None:
        """KG5: a removal wins over concurrent changes, else the lowest level; None for removed."""
        if any(c.action is Action.REMOVE for c in latest):
            return None
        return min(c.level or Level.PULL for c in latest)

    def _apply(self, included: Sequence[str], complete: Mapping[str, Change]) -> None:
        """KG5 and KG6 over the given (counted) changes, into `_members` and `_cuts`."""
        about: dict[Member, list[str]] = {}
        members: dict[Member, Level] = {}
        for cid in included:
            c = complete[cid]
            if c.action is Action.CREATE:
                members[Member.key(c.author)] = Level.MANAGE
            elif c.member is not None:
                about.setdefault(c.member, []).append(cid)
        cuts: dict[str, dict[int, int]] = {}
        for member, ids in about.items():
            latest = [complete[cid] for cid in self._latest(ids)]
            level = self._latest_level(latest)
            if level is None:
                members.pop(member, None)
            else:
                members[member] = level
            cut = _cut_of(member, level, latest)
            if cut is not None:
                cuts[member.id] = cut
        self._members, self._cuts = members, cuts

    def _resolve(self) -> GroupState:
        by_id = self._changes
        rejected: dict[str, str] = {}

        # KG1: complete changes only.
        complete: dict[str, Change] = {}
        for cid in _order(by_id):
            c = by_id[cid]
            if all(p in complete for p in c.previous):
                complete[cid] = c
        pending = frozenset(by_id) - frozenset(complete)

        order = _order(complete)
        bits = self._bit = {cid: 1 << i for i, cid in enumerate(order)}
        ancestors = self._ancestors = {}
        for cid in order:
            acc = 0
            for p in complete[cid].previous:
                acc |= ancestors[p] | bits[p]
            ancestors[cid] = acc

        # KG2: one genesis.
        creates = sorted(cid for cid in order if complete[cid].action is Action.CREATE and not complete[cid].previous)
        genesis = creates[0] if creates else None
        for cid in order:
            c = complete[cid]
            if cid == genesis:
                continue
            if c.action is Action.CREATE:
                rejected[cid] = "KG2: a group has one create"
            elif genesis is None or not ancestors[cid] & bits[genesis]:
                rejected[cid] = "KG2: does not descend from the group's create"

        # KG3: authority judged on the causal past: the author's level from the changes about them that
        # count in the resolution of the change's ancestors (KG5 over just those). Within that past a change
        # does not count when it descends from one that was not authorised (`tainted`, the same in every
        # past) or when a demotion in that past drops it or one of its ancestors (KG4; `hits` pairs each
        # authorised demotion with the demoted key's concurrent authorised changes).
        authorised: list[str] = []
        authorised_mask = 0
        tainted = 0
        about: dict[Member, list[str]] = {}
        demotions_of: dict[str, list[str]] = {}
        changes_by: dict[str, list[str]] = {}
        hits: list[tuple[int, int]] = []
        for cid in order:
            if cid not in rejected:
                c = complete[cid]
                if cid != genesis:
                    level = self._past_level(c, ancestors[cid], about, tainted, hits, complete, genesis)
                    reason = self._authority(c, {Member.key(c.author): level} if level is not None else {})
                    if reason is not None:
                        rejected[cid] = reason
                    else:
                        assert c.member is not None
                        about.setdefault(c.member, []).append(cid)
            if cid in rejected or ancestors[cid] & tainted:
                tainted |= bits[cid]
            if cid in rejected:
                continue
            c = complete[cid]
            for d in demotions_of.get(c.author, ()):
                if not ancestors[cid] & bits[d]:
                    hits.append((bits[d], bits[cid]))
            if _demotes(c) and c.member is not None and c.member.kind == "key":
                demotions_of.setdefault(c.member.id, []).append(cid)
                for x in changes_by.get(c.member.id, ()):
                    if x != cid and not ancestors[cid] & bits[x]:
                        hits.append((bits[cid], bits[x]))
            changes_by.setdefault(c.author, []).append(cid)
            authorised.append(cid)
            authorised_mask |= bits[cid]

        # KG4: strong removal.
        counted = set(authorised)
        by_author: dict[str, list[str]] = {}
        for cid in authorised:
            by_author.setdefault(complete[cid].author, []).append(cid)
        for cid in authorised:
            c = complete[cid]
            if not _demotes(c) or c.member is None or c.member.kind != "key":
                continue
            for other in by_author.get(c.member.id, ()):
                # Concurrent only: a change the removal follows was seen by the remover, and one that
                # follows the removal was made after a re-add (KG3 judged it on that).
                concurrent = not ancestors[cid] & bits[other] and not ancestors[other] & bits[cid]
                if other != cid and concurrent and other in counted:
                    counted.discard(other)
                    rejected[other] = f"KG4: its author {c.member.id} was removed or demoted by {cid} concurrently"
        uncounted = 0
        for cid in order:
            if cid not in counted:
                uncounted |= bits[cid]
            elif ancestors[cid] & uncounted:
                counted.discard(cid)
                uncounted |= bits[cid]
                rejected.setdefault(cid, "KG4: follows a dropped change")

        self._all_counted = len(counted) == len(authorised)
        included = [cid for cid in order if cid in counted]
        self._apply(included, complete)
        followed = {p for cid in included for p in complete[cid].previous}
        tips = frozenset(cid for cid in included if cid not in followed)
        return GroupState(genesis, dict(self._members), dict(self._cuts), frozenset(counted), pending, rejected, tips)


def resolve(changes: Iterable[Change]) -> GroupState:
    """The state of the group these changes belong to; see the module documentation for the rules."""
    return Resolver(changes).state
