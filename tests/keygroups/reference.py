"""The first, plainly quadratic implementation of `keygroups.resolve`, kept as the reference the fast
one must agree with."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping

from keygroups.resolve import Action, Change, GroupState, Level, Member


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
        else:
            members[member] = min(changes[cid].level or Level.PULL for cid in latest)
        if member.kind == "key" and members.get(member, Level.PULL) < Level.WRITE:
            merged: dict[int, int] = {}
            for cid in latest:
                for log_id, seq in changes[cid].cuts.items():
                    merged[log_id] = min(seq, merged.get(log_id, seq))
            cuts[member.id] = merged
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
            concurrent = other not in ancestors[cid] and cid not in ancestors[other] and other != cid
            if complete[other].author == c.member.id and concurrent and other in counted:
                counted.discard(other)
                rejected[other] = f"KG4: its author {c.member.id} was removed or demoted by {cid} concurrently"
    for cid in order:
        if cid in counted and any(a not in counted for a in ancestors[cid]):
            counted.discard(cid)
            rejected.setdefault(cid, "KG4: follows a dropped change")

    members, cuts = _apply([cid for cid in order if cid in counted], complete, ancestors)
    tips = frozenset(counted) - {p for cid in counted for p in complete[cid].previous}
    return GroupState(genesis, members, cuts, frozenset(counted), pending, rejected, tips)
