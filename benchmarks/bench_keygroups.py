"""Key-group resolution: a group of about 1 000 members from 10 000 membership changes, and the cost of one
more change. Aims: under 1 s for the whole set, under 5 ms for one more change.

The history: one creator, 10 managers, ~1 700 keys added, ~600 removed, the rest level changes; every 100th step two
managers act concurrently and the next change merges them. The reference figure is the first, plainly
quadratic implementation (`tests/keygroups/reference.py`) on a tenth of the history.

Run: .venv/bin/python benchmarks/bench_keygroups.py [--changes N]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from keygroups import Action, Change, Level, Member, Resolver, resolve
from tests.keygroups import reference


def key(i: int) -> str:
    return f"{i:064x}"


def history(n: int, seed: int = 1) -> list[Change]:
    rng = random.Random(seed)
    creator = key(0)
    changes = [Change("g", creator, Action.CREATE)]
    managers = [creator]
    tips = frozenset({"g"})
    members: list[int] = []
    next_key = 1
    i = 0
    while len(changes) < n:
        i += 1
        cid = f"c{i:06d}"
        author = rng.choice(managers)
        if len(managers) < 11:
            change = Change(cid, author, Action.ADD, tips, Member.key(key(next_key)), Level.MANAGE)
            managers.append(key(next_key))
            next_key += 1
        else:
            roll = rng.random()
            if roll < 0.06 and members:
                gone = members.pop(rng.randrange(len(members)))
                change = Change(cid, author, Action.REMOVE, tips, Member.key(key(gone)), cuts={0: rng.randrange(9)})
            elif roll < 0.84 and members:
                who = rng.choice(members)
                change = Change(cid, author, Action.ADD, tips, Member.key(key(who)), rng.choice(list(Level)[:3]))
            else:
                members.append(next_key)
                change = Change(cid, author, Action.ADD, tips, Member.key(key(next_key)), Level.WRITE)
                next_key += 1
        changes.append(change)
        if i % 100 == 0 and len(changes) < n:  # a concurrent change by another manager
            other = Change(f"{cid}b", rng.choice(managers), Action.ADD, tips, Member.key(key(next_key)), Level.READ)
            members.append(next_key)
            next_key += 1
            changes.append(other)
            tips = frozenset({cid, other.id})
        else:
            tips = frozenset({cid})
    return changes


def timed(run: object, repeats: int = 3) -> float:
    assert callable(run)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=10_000)
    args = parser.parse_args()

    changes = history(args.changes)
    rng = random.Random(2)
    shuffled = changes[:]
    rng.shuffle(shuffled)
    state = resolve(changes)
    print(f"history: {len(changes)} changes -> {len(state.members)} members, {len(state.counted)} counted")

    full = timed(lambda: resolve(shuffled))
    print(f"resolve all {len(changes)} changes (any arrival order): {full * 1000:.0f} ms (aim < 1000 ms)")

    small = changes[: len(changes) // 10]
    fast_small = timed(lambda: resolve(small))
    ref_small = timed(lambda: reference.resolve(small), repeats=1)
    print(
        f"reference on {len(small)} changes: {ref_small * 1000:.0f} ms; this implementation: "
        f"{fast_small * 1000:.1f} ms ({ref_small / fast_small:.0f}x)"
    )

    # One more change by a manager who has seen the current state (the usual case).
    resolver = Resolver(changes)
    manager = next(m.id for m, level in resolver.state.members.items() if level is Level.MANAGE)
    samples = []
    for j in range(200):
        tips = resolver.state.tips
        change = Change(f"z{j:04d}", manager, Action.ADD, tips, Member.key(key(10**6 + j)), Level.WRITE)
        start = time.perf_counter()
        resolver.add(change)
        samples.append(time.perf_counter() - start)
    samples.sort()
    print(
        f"one more change (follows the tips): median {samples[len(samples) // 2] * 1000:.2f} ms, "
        f"max {samples[-1] * 1000:.2f} ms (aim < 5 ms)"
    )

    # One more change that is concurrent (a manager who had not seen the last change): a full resolution.
    late = Change("zlate", manager, Action.ADD, frozenset({"g"}), Member.key(key(2 * 10**6)), Level.READ)
    start = time.perf_counter()
    resolver.add(late)
    print(f"one more concurrent change (re-resolves everything): {(time.perf_counter() - start) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
