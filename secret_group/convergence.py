"""Concurrent commits that converge without a server, sans-IO: which branch of the commit tree wins, and
what a member must do to get onto it.

Commits form a tree: each names its parent (the group id for the first). Two managers on two sides of a
partition commit on the same parent; MLS allows one branch only, so every member must pick the same one
from the documents alone, whatever order they arrived in.

Checks and rules (numbered; the tests name them):

- V1 a commit counts only below a counted parent (the group id counts): a commit whose parent is unknown,
  invalid or not counted is not counted, and neither is anything below it.
- V2 its author had manage level in the key-group state the commit names (`key_group_tips`, its causal
  point); the caller decides this from the key group (`KeyGroup.state_at`), identically everywhere.
- V3 OpenMLS accepts it on the restored state of its parent epoch. Only members holding that state can
  check; a member that finds a commit invalid marks it (`invalid`) and it stops counting there. An honest
  commit is accepted by every member of its parent epoch, so honest members agree; a commit valid for
  some members and garbage for others cannot be detected by a receiver-side rule (mls-architecture
  #251): re-adding (R3) is the repair.
- K1 among the counted children of one parent, the winner is, in order: the longer counted chain below it
  (itself included), then one that acts on a removal (`removes`: a key with read level in the key-group
  state of its parent commit has none in its own), then the lower author key, then the lower commit id.
  Never timestamps, arrival or local receive order. The winning path follows the winner from the root
  down to a leaf.
- R1 a member whose applied path is a prefix of the winning path applies the rest in order.
- R2 a member whose path left the winning path at fork point F (the last common commit) restores its
  snapshot of F, if it holds one (the tip and the `R` commits before it), and replays the winner from F.
- R3 a member whose path left the winning path deeper than its snapshots is lost: it drops its state of
  the group, asks to be re-added (a rejoin request: a commit document with an empty MLS commit naming
  the winning tip it saw and a fresh key package of its own) and joins by the welcome of the commit that
  re-adds it. A manager on the winning path re-adds every requester with read level whose request names
  a commit on its path and was not honoured below it (removing its stale leaf first if it has one).
- R4 snapshots are taken right after a merge (no pending commit then), in the same transaction, and kept
  while their depth (commits from the root) is within `R` of the tip's, on any branch: the tip, the R
  before it, and rivals of those depths (past-epoch keys live no longer than that).
- R5 a commit to apply that this member holds a snapshot of (one it applied before rolling back, or its
  own: OpenMLS cannot process its own commit once it is no longer pending) is restored from the snapshot
  instead of processed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["R", "CommitInfo", "Plan", "RejoinRequest", "winning_path", "rank_key", "plan", "keep", "open_rejoins"]

R = 5


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """What the ranking needs of one commit document. `authorised`: V2; `invalid`: V3 failed here."""

    id: str
    parent: str
    author: str
    removes: bool
    authorised: bool = True
    invalid: bool = False


@dataclass(frozen=True, slots=True)
class RejoinRequest:
    """R3: `author` asks to be re-added with `key_package`, having seen `parent` as the winning tip."""

    id: str
    author: str
    parent: str
    key_package: str


@dataclass(frozen=True, slots=True)
class Plan:
    """What a member does next (R1-R3): `kind` is "apply" (replay `replay` on the tip), "rollback" (restore
    the snapshot of `restore`, then replay `replay`), "lost" (R3) or "idle"."""

    kind: str
    restore: str | None = None
    replay: tuple[str, ...] = ()


def _counted_children(root: str, commits: Mapping[str, CommitInfo]) -> dict[str, list[CommitInfo]]:
    """V1-V3: children by parent, reachable from the root through counted commits only."""
    by_parent: dict[str, list[CommitInfo]] = {}
    for c in commits.values():
        if c.authorised and not c.invalid:
            by_parent.setdefault(c.parent, []).append(c)
    counted: dict[str, list[CommitInfo]] = {}
    stack = [root]
    while stack:
        parent = stack.pop()
        children = by_parent.get(parent, [])
        counted[parent] = children
        stack.extend(c.id for c in children if c.id not in counted)
    return counted


def _lengths(root: str, children: Mapping[str, list[CommitInfo]]) -> dict[str, int]:
    """The longest counted chain below each commit, itself included (iterative: chains may be long)."""
    order: list[str] = []
    stack = [root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(c.id for c in children.get(node, []))
    length: dict[str, int] = {}
    for node in reversed(order):
        length[node] = 1 + max((length[c.id] for c in children.get(node, [])), default=0)
    return length


def rank_key(commit: CommitInfo, length: int) -> tuple[int, bool, str, str]:
    """K1: smaller wins."""
    return (-length, not commit.removes, commit.author, commit.id)


def winning_path(root: str, commits: Iterable[CommitInfo]) -> list[str]:
    """K1: the root and the winner at every step below it."""
    by_id = {c.id: c for c in commits}
    children = _counted_children(root, by_id)
    length = _lengths(root, children)
    path = [root]
    while children.get(path[-1]):
        best = min(children[path[-1]], key=lambda c: rank_key(c, length[c.id]))
        path.append(best.id)
    return path


def plan(applied: Sequence[str], winner: Sequence[str], snapshots: Collection[str]) -> Plan:
    """R1-R3 for a member whose applied path (root first) is `applied`, holding snapshots of `snapshots`."""
    common = 0
    for ours, theirs in zip(applied, winner, strict=False):
        if ours != theirs:
            break
        common += 1
    if common == len(applied):  # R1
        rest = tuple(winner[common:])
        return Plan("apply", None, rest) if rest else Plan("idle")
    if common == 0:
        return Plan("lost")
    fork = applied[common - 1]
    if fork in snapshots:  # R2
        return Plan("rollback", fork, tuple(winner[common:]))
    return Plan("lost")  # R3


def keep(depths: Mapping[str, int], tip_depth: int) -> set[str]:
    """R4: of the snapshots held (commit -> depth from the root), those to keep at a tip of `tip_depth`."""
    return {commit for commit, depth in depths.items() if depth >= tip_depth - R}


def open_rejoins(
    requests: Iterable[RejoinRequest], path: Sequence[str], added: Mapping[str, Collection[str]]
) -> list[RejoinRequest]:
    """R3, the manager's side: the newest request per author that names a commit on `path` and that no
    commit below it on `path` honoured (`added[commit]`: the keys a commit added)."""
    position = {commit: i for i, commit in enumerate(path)}
    newest: dict[str, RejoinRequest] = {}
    for request in requests:
        at = position.get(request.parent)
        if at is None:
            continue
        current = newest.get(request.author)
        if current is None or (at, request.id) > (position[current.parent], current.id):
            newest[request.author] = request
    out = []
    for author, request in sorted(newest.items()):
        if not any(author in added.get(c, ()) for c in path[position[request.parent] + 1 :]):
            out.append(request)
    return out
