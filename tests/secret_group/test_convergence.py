"""Concurrent commits converge (`secret_group.convergence`): the ranking and the rollback decision on their
own, then a seeded-random property test over a simulated network of 4-6 real OpenMLS members."""

from __future__ import annotations

import os
import random

import pytest

from secret_group.convergence import CommitInfo, Plan, R, RejoinRequest, keep, open_rejoins, plan, winning_path
from tests.secret_group.convergence_sim import GROUP_ID, Sent, World

RUNS = int(os.environ.get("CONVERGENCE_RUNS", "200"))


def _c(i: str, parent: str, author: str = "a", removes: bool = False, **kw: bool) -> CommitInfo:
    return CommitInfo(i, parent, author, removes, **kw)


def test_k1_the_longer_chain_wins_then_a_removal_then_the_lower_author_then_the_lower_id() -> None:
    base = [_c("x1", "g", "b"), _c("y1", "g", "a", True), _c("x2", "x1")]
    assert winning_path("g", base) == ["g", "x1", "x2"]  # longer
    assert winning_path("g", [*base[:2], _c("z1", "g", "a")]) == ["g", "y1"]  # removes
    assert winning_path("g", [_c("p", "g", "b"), _c("q", "g", "a")]) == ["g", "q"]  # author
    assert winning_path("g", [_c("q", "g", "a"), _c("p", "g", "a")]) == ["g", "p"]  # id


def test_k1_never_depends_on_arrival_order() -> None:
    rng = random.Random(7)
    commits = [_c("c0", "g")]
    for i in range(1, 40):
        commits.append(_c(f"c{i}", rng.choice(commits).id, rng.choice("abc"), rng.random() < 0.3))
    expected = winning_path("g", commits)
    for _ in range(20):
        rng.shuffle(commits)
        assert winning_path("g", commits) == expected


def test_v1_v3_an_invalid_or_unauthorised_commit_and_all_below_it_do_not_count() -> None:
    chain = [_c("x1", "g"), _c("x2", "x1"), _c("x3", "x2"), _c("y1", "g", "z")]
    assert winning_path("g", chain) == ["g", "x1", "x2", "x3"]
    assert winning_path("g", [replace_invalid(chain[0]), *chain[1:]]) == ["g", "y1"]
    unauthorised = CommitInfo("x1", "g", "a", False, authorised=False)
    assert winning_path("g", [unauthorised, *chain[1:]]) == ["g", "y1"]
    assert winning_path("g", [_c("o", "unknown")]) == ["g"]


def replace_invalid(c: CommitInfo) -> CommitInfo:
    return CommitInfo(c.id, c.parent, c.author, c.removes, c.authorised, True)


def test_r1_r3_apply_roll_back_within_r_or_get_lost() -> None:
    applied = ["g", "a1", "a2"]
    assert plan(applied, ["g", "a1", "a2", "a3"], {"a2"}) == Plan("apply", None, ("a3",))
    assert plan(applied, applied, {"a2"}) == Plan("idle")
    assert plan(applied, ["g", "a1", "b2", "b3"], {"a1", "a2"}) == Plan("rollback", "a1", ("b2", "b3"))
    assert plan(applied, ["g", "b1"], {"a1", "a2"}) == Plan("lost")
    long = ["g", *(f"a{i}" for i in range(1, 12))]
    depths = {c: i for i, c in enumerate(long)} | {"rival": 9, "old": 2}
    assert keep(depths, 11) == set(long[-(R + 1) :]) | {"rival"}
    assert plan(long, ["g", "a1", "b2"], keep(depths, 11)) == Plan("lost")


def test_r3_a_rejoin_request_is_open_until_a_commit_below_it_adds_its_author() -> None:
    path = ["g", "c1", "c2", "c3"]
    requests = [RejoinRequest("r1", "erin", "c1", "kp1"), RejoinRequest("r2", "erin", "c2", "kp2")]
    assert open_rejoins(requests, path, {}) == [requests[1]]
    assert open_rejoins(requests, path, {"c3": {"erin"}}) == []
    assert open_rejoins(requests, path, {"c2": {"erin"}}) == [requests[1]]  # the newest names c2
    assert open_rejoins([RejoinRequest("r3", "erin", "elsewhere", "kp")], path, {}) == []


def _run(seed: int) -> World:
    rng = random.Random(seed)
    n = rng.choice([4, 5, 6])
    world = World(rng, n, managers=2 if n < 6 else 3)
    members = world.members
    creator = members[0]
    initial = members[: n - 1]  # the last one is added during the run, maybe
    creator.create(initial)
    world.deliver_all()
    creator.reconcile()
    world.deliver_all()
    message = 0
    for _ in range(rng.randint(20, 60)):
        roll = rng.random()
        if roll < 0.08:  # a new partition: every member on one of two sides
            for m in members:
                world.side[m.key] = rng.randint(0, 1)
        elif roll < 0.22:
            actor = rng.choice([m for m in members if m.manager])
            if actor.record is None or not actor.record.active:
                continue
            others = [m for m in members if not m.manager]
            target = rng.choice(others)
            choice = rng.random()
            if choice < 0.7:
                wanted = actor.wanted_at(actor.tips()) or set()
                actor.change_intent(target.key, target.key not in wanted)
                actor.reconcile()
            else:
                actor.reconcile(rotate=True)
        elif roll < 0.40:
            sender = rng.choice(members)
            if sender.record is not None and sender.record.active:
                message += 1
                sender.send(f"m{message}")
        else:
            pairs = world.deliverable()
            if pairs:
                doc_id, m = rng.choice(pairs)
                world.deliver(doc_id, m)
                if rng.random() < 0.1:  # a duplicate
                    m.receive(world.docs[doc_id])
                    m.settle()
        for m in members:
            if m.manager and m.designated() and rng.random() < 0.2:
                m.reconcile()
    for m in members:  # the partition heals
        world.side[m.key] = 0
    for _ in range(30):
        world.deliver_all()
        committed = False
        for m in members:
            m.settle()
            if m.manager and m.designated():
                committed = m.reconcile() or committed
        world.deliver_all()
        if not committed and all(m.queue == [] for m in members if m.record is not None and m.record.active):
            break
    else:
        state = [(m.key[:8], m.applied[-1:], m.asked, m.queue, m.record and m.record.active) for m in members]
        raise AssertionError(f"seed {seed}: no quiescence: {state} winner {members[0].winner()[-1]}")
    return world


def _check(world: World, seed: int) -> tuple[int, int]:
    members = world.members
    winners = {tuple(m.winner()) for m in members}
    assert len(winners) == 1, f"seed {seed}: members see different winners"
    winner = list(winners.pop())
    tip = winner[-1]
    wanted = {m.key for m in members if m.manager} | (members[0].wanted_at(members[0].tips()) or set())
    final = world.members_at.get(tip)
    assert final == frozenset(wanted), f"seed {seed}: MLS members {final} are not the key group's {wanted}"
    states = set()
    for m in members:
        if m.key in wanted:
            assert m.record is not None and m.record.active and m.record.tip == tip, f"seed {seed}: {m.key[:8]}"
            mls = m.engine.mls(m.record)
            states.add((mls.epoch, mls.epoch_authenticator(), frozenset(k.hex() for k in mls.members())))
        else:
            assert m.record is None or not m.record.active or m.record.tip != tip
    assert len(states) == 1, f"seed {seed}: members differ in epoch, authenticator or members"
    # Nobody decrypts what was sealed in an epoch it is not a member of.
    for sent in world.sent:
        readers = world.readers.get(sent.envelope, set())
        entitled = world.members_at.get(sent.tip) if sent.tip != GROUP_ID else frozenset({members[0].key})
        assert entitled is not None
        assert readers <= entitled, f"seed {seed}: {readers - entitled} read {sent.message} sealed at {sent.tip}"
    # Every message whose last copy was sealed on the winning path is read once by every member then.
    # (or, when it arrived after its epoch's keys were dropped, it is shown as withdrawn).
    last: dict[str, Sent] = {}
    for sent in world.sent:
        last[sent.message] = sent
    read = late = 0
    for text, sent in last.items():
        if sent.tip not in winner:
            continue
        for key in world.members_at.get(sent.tip, frozenset()) - {sent.sender}:
            m = world.members_of(key)
            if m.joined_at not in winner or winner.index(sent.tip) < winner.index(m.joined_at):
                continue  # R3: state dropped and joined again later, or removed and re-added since
            gone = m.record is not None and not m.record.active and sent.envelope in m.envelopes  # removed first
            if (sent.envelope in m.late or gone) and text not in m.shown:
                late += 1
                continue
            assert text in m.shown, f"seed {seed}: {key[:8]} never read {text}"
            read += 1
    return read, late


@pytest.mark.parametrize("chunk", range(4))
def test_property_random_partitions_and_commits_converge(chunk: int) -> None:
    per = max(1, RUNS // 4)
    read = late = 0
    for seed in range(chunk * per, (chunk + 1) * per):
        r, x = _check(_run(seed), seed)
        read, late = read + r, late + x
    assert late < read / 5, f"{late} messages arrived too late, {read} were read"  # withdrawals stay rare


def test_the_simulation_does_fork_and_roll_back() -> None:
    """Positive control: the random schedules do produce rival commits."""
    forks = 0
    for seed in range(20):
        world = _run(seed)
        parents = [d.parent for d in world.docs.values() if hasattr(d, "commit")]
        forks += len(parents) - len(set(parents))
    assert forks > 0
