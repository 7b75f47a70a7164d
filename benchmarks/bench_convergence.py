"""Concurrent commits converging (issue 17), on the sans-IO simulation of `tests/secret_group/convergence_sim.py`:
real OpenMLS members (every MLS operation is real), documents handed over in memory (no nodes, no
network: replication latency is not in these figures; `tests/node_adapter/test_client_convergence.py`
does the same with `panda node` processes for 4-5 members).

1. Heal to convergence: a group of N members (2 managers) splits in two halves; the manager of side A
   makes K + 1 self-update commits, the manager of side B K rival ones (side A's longer chain wins).
   Timed from the heal until every member is on the winning branch with the same epoch (for K > R=5 the
   side-B members ask to be re-added and the winning manager re-adds them, all included).
2. One member's cost of getting onto the winning branch: a rollback (restore a snapshot) + replay of K
   commits, against a normal merge of the same K commits by a member that was on the winning side.

    .venv/bin/python benchmarks/bench_convergence.py [--sizes 10 100] [--rivals 1 5 20]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from secret_group.convergence import R
from tests.secret_group.convergence_sim import World


def _quiesce(world: World) -> None:
    members = world.members
    for _ in range(50):
        world.deliver_all()
        committed = False
        for m in members:
            m.settle()
            if m.manager and m.designated():
                committed = m.reconcile() or committed
        world.deliver_all()
        if not committed:
            return
    raise AssertionError("no quiescence")


def _states(world: World) -> set[tuple[str, int]]:
    out = set()
    for m in world.members:
        assert m.record is not None and m.record.active, f"{m.key[:8]} is not a member"
        out.add((m.applied[-1], m.engine.mls(m.record).epoch))
    return out


def run(n: int, rivals: int, seed: int = 1) -> dict[str, float]:
    world = World(random.Random(seed), n, managers=2)
    a_manager, b_manager = world.members[0], world.members[1]
    a_manager.create(world.members[1:])
    world.deliver_all()
    a_manager.reconcile()
    _quiesce(world)
    for i, m in enumerate(world.members):
        world.side[m.key] = 0 if i % 2 == 0 else 1
    for _ in range(rivals + 1):
        a_manager.reconcile(rotate=True)
    for _ in range(rivals):
        b_manager.reconcile(rotate=True)
    world.deliver_all()  # within each side
    loser = next(m for m in world.members[2:] if world.side[m.key] == 1)
    winner_side = next(m for m in world.members[2:] if world.side[m.key] == 0)
    for m in world.members:
        world.side[m.key] = 0
    start = time.perf_counter()
    # What the two members of interest must apply, timed alone (the others wait: deliver to them first).
    a_commits = [c for c in a_manager.applied[1:] if c not in loser.commits]
    t0 = time.perf_counter()
    for c in a_commits:
        loser.receive(world.docs[c])
        world.holders[c].add(loser.key)
    loser.settle()
    rollback = time.perf_counter() - t0
    # A normal merge of the same number of commits: a fresh round of K + 1 on side A's tip, then one member.
    heal_done = None
    _quiesce(world)
    heal_done = time.perf_counter() - start
    assert len(_states(world)) == 1, "members did not converge"
    for m in world.members:
        world.side[m.key] = 1 if m is winner_side else 0
    before = set(a_manager.applied)
    for _ in range(rivals + 1):
        a_manager.reconcile(rotate=True)
    new = [c for c in a_manager.applied[1:] if c not in before]
    t0 = time.perf_counter()
    for c in new:
        winner_side.receive(world.docs[c])
        world.holders[c].add(winner_side.key)
    winner_side.settle()
    merge = time.perf_counter() - t0
    lost = rivals > R
    return {"heal": heal_done, "rollback": rollback, "merge": merge, "lost": float(lost)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--rivals", type=int, nargs="+", default=[1, 5, 20])
    args = parser.parse_args()
    print(f"{'members':>7} {'rivals':>6} {'heal->converged':>16} {'loser: rollback/rejoin':>23} {'normal merge':>13}")
    for n in args.sizes:
        for k in args.rivals:
            r = run(n, k)
            how = "rejoin" if r["lost"] else "rollback+replay"
            print(
                f"{n:>7} {k:>6} {r['heal'] * 1000:>13.0f} ms {r['rollback'] * 1000:>11.1f} ms {how:>11}"
                f" {r['merge'] * 1000:>10.1f} ms"
            )


if __name__ == "__main__":
    main()
