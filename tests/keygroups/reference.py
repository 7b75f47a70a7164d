"""An independent, brute-force key-group resolver, written from the KG1-KG6 rules in the
`keygroups.resolve` module documentation (the spec), not from its code: the fast resolver must agree with it.

It shares only the value types (`Change`, `Member`, `Level`, `Action`) and is deliberately naive:

- the causal past of a change is a transitive closure computed by fixpoint, never a topological order;
- nothing is applied in any order: KG5 only ever looks at the "latest" changes about a member, which is an
  order-free notion, so the reference checks that resolution does not depend on the order;
- KG3 is the spec read literally and recursively: a change's author is judged on `resolve(past)`, the whole
  resolution (KG1-KG6) of the set of its ancestors, memoised per set.

Readings of the spec where its words leave a choice (each chosen as the conservative one, and written here so
that a disagreement with the fast resolver names the sentence at stake):

- KG4 "removes a manager": any removal of a key, or an add that gives it a level below manage, drops that
  key's changes concurrent to it, whether or not the remover saw the key as a manager (a concurrent promotion
  loses to the removal under KG5 anyway). The removal acts when it passes KG1-KG3, even if KG4 itself drops it
  (so two managers removing each other both lose, as the spec says).
- KG4 "descends from a dropped one": a change that descends from a change that does not count (dropped by
  KG4, or rejected by KG2/KG3) does not count either.
- KG6 "the lowest holds": per log, the minimum over the latest changes that record a cut for that log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from keygroups.resolve import Action, Change, GroupState, Level, Member

__all__ = ["resolve"]


def _ancestors(changes: Mapping[str, Change]) -> dict[str, frozenset[str]]:
    """Every change's transitive `previous` within `changes`, by iterating to a fixpoint."""
    anc: dict[str, set[str]] = {cid: {p for p in c.previous if p in changes} for cid, c in changes.items()}
    grew = True
    while grew:
        grew = False
        for cid in anc:
            wider = set(anc[cid])
            for p in anc[cid]:
                wider |= anc[p]
            if wider != anc[cid]:
                anc[cid], grew = wider, True
    return {cid: frozenset(a) for cid, a in anc.items()}


def _level_of(member: Member, latest: list[Change]) -> Level | None:
    """KG5 for one member's latest changes: a removal wins, else the lowest level."""
    if any(c.action is Action.REMOVE for c in latest):
        return None
    return min(c.level for c in latest if c.level is not None)


class _Reference:
    def __init__(self, changes: Iterable[Change]) -> None:
        self.all: dict[str, Change] = {}
        for c in changes:
            self.all.setdefault(c.id, c)
        self.memo: dict[frozenset[str], GroupState] = {}

    def resolve(self, ids: frozenset[str]) -> GroupState:
        if ids not in self.memo:
            self.memo[ids] = self._resolve({cid: self.all[cid] for cid in ids})
        return self.memo[ids]

    def _resolve(self, changes: dict[str, Change]) -> GroupState:
        rejected: dict[str, str] = {}

        # KG1: complete = everything it names is present and complete (least fixpoint).
        complete: set[str] = set()
        grew = True
        while grew:
            grew = False
            for cid, c in changes.items():
                if cid not in complete and all(p in complete for p in c.previous):
                    complete.add(cid)
                    grew = True
        pending = frozenset(changes) - complete
        mine = {cid: changes[cid] for cid in complete}
        anc = _ancestors(mine)

        # KG2: the genesis is the CREATE naming nothing (the lowest id when there are several).
        creates = [cid for cid, c in mine.items() if c.action is Action.CREATE and not c.previous]
        genesis = min(creates) if creates else None
        for cid, c in mine.items():
            if cid == genesis:
                continue
            if c.action is Action.CREATE or genesis is None or genesis not in anc[cid]:
                rejected[cid] = "KG2"

        # KG3: the author manages the group in the resolution of the change's causal past.
        for cid, c in mine.items():
            if cid in rejected or cid == genesis:
                continue
            past = self.resolve(anc[cid])
            if past.members.get(Member.key(c.author)) is not Level.MANAGE or c.member is None:
                rejected[cid] = "KG3"
        authorised = {cid for cid in mine if cid not in rejected}

        # KG4: a demotion drops the demoted key's changes concurrent to it, then descendants of what does not count.
        counted = set(authorised)
        for d in authorised:
            c = mine[d]
            demotes = c.action is Action.REMOVE or (c.level is not None and c.level < Level.MANAGE)
            if not demotes or c.member is None or c.member.kind != "key":
                continue
            for x in authorised:
                if x != d and mine[x].author == c.member.id and x not in anc[d] and d not in anc[x]:
                    counted.discard(x)
                    rejected[x] = "KG4"
        for cid in list(counted):
            if any(a not in counted for a in anc[cid]):
                counted.discard(cid)
                rejected.setdefault(cid, "KG4")

        # KG5 and KG6 over the counted changes, member by member, order-free.
        members: dict[Member, Level] = {}
        cuts: dict[str, dict[int, int]] = {}
        if genesis is not None:
            members[Member.key(mine[genesis].author)] = Level.MANAGE
        about: dict[Member, list[str]] = {}
        for cid in counted:
            m = mine[cid].member
            if cid != genesis and m is not None:
                about.setdefault(m, []).append(cid)
        for member, ids in about.items():
            latest = [mine[x] for x in ids if not any(x in anc[y] for y in ids)]
            level = _level_of(member, latest)
            if level is None:
                members.pop(member, None)
            else:
                members[member] = level
            if member.kind == "key" and (level is None or level < Level.WRITE):
                cut: dict[int, int] = {}
                for c in latest:
                    for log_id, seq in c.cuts.items():
                        cut[log_id] = min(seq, cut.get(log_id, seq))
                if cut:
                    cuts[member.id] = cut
        tips = frozenset(x for x in counted if not any(x in anc[y] for y in counted))
        return GroupState(genesis, members, cuts, frozenset(counted), pending, rejected, tips)


def resolve(changes: Iterable[Change]) -> GroupState:
    """The group's state by the brute-force reading of KG1-KG6. `rejected` maps each change to its check
    (KG2, KG3 or KG4) without the wording; `cuts` leaves out keys without a cut."""
    ref = _Reference(changes)
    return ref.resolve(frozenset(ref.all))
