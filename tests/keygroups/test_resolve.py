"""Key-group resolution (KG1-KG6): scenarios, strong removal, and replicas that agree whatever the
arrival order."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from keygroups import Action, Change, GroupState, Level, Member, Resolver, resolve
from tests.keygroups import reference

A, B, C, D = "aa" * 32, "bb" * 32, "cc" * 32, "dd" * 32


def create(cid: str, author: str = A) -> Change:
    return Change(cid, author, Action.CREATE)


def add(cid: str, author: str, member: str, level: Level, *previous: str) -> Change:
    return Change(cid, author, Action.ADD, frozenset(previous), Member.key(member), level)


def remove(cid: str, author: str, member: str, *previous: str, cuts: dict[int, int] | None = None) -> Change:
    return Change(cid, author, Action.REMOVE, frozenset(previous), Member.key(member), cuts=cuts or {})


def test_kg2_creator_is_manager_and_group_id_is_the_create() -> None:
    state = resolve([create("g")])
    assert state.group_id == "g" and state.members == {Member.key(A): Level.MANAGE}


def test_levels_and_nested_group_members() -> None:
    changes = [
        create("g"),
        add("1", A, B, Level.WRITE, "g"),
        add("2", A, C, Level.READ, "1"),
        Change("3", A, Action.ADD, frozenset({"2"}), Member.group("other-group"), Level.READ),
        add("4", A, C, Level.WRITE, "3"),
    ]
    state = resolve(changes)
    assert state.members == {
        Member.key(A): Level.MANAGE,
        Member.key(B): Level.WRITE,
        Member.key(C): Level.WRITE,
        Member.group("other-group"): Level.READ,
    }


def test_kg3_only_managers_change_membership() -> None:
    state = resolve([create("g"), add("1", A, B, Level.WRITE, "g"), add("2", B, C, Level.WRITE, "1")])
    assert Member.key(C) not in state.members and state.rejected["2"].startswith("KG3")


def test_kg1_changes_wait_for_their_previous() -> None:
    state = resolve([create("g"), add("2", A, C, Level.READ, "1")])
    assert state.pending == {"2"} and Member.key(C) not in state.members


def test_kg4_strong_removal_drops_the_removed_managers_concurrent_changes() -> None:
    changes = [
        create("g"),
        add("1", A, B, Level.MANAGE, "g"),
        add("2", B, C, Level.MANAGE, "1"),  # B adds C ...
        remove("3", A, B, "1"),  # ... while A, not having seen it, removes B
        add("4", C, D, Level.WRITE, "2"),  # C acts on B's grant: depends on a dropped change
    ]
    state = resolve(changes)
    assert state.members == {Member.key(A): Level.MANAGE}
    assert state.rejected["2"].startswith("KG4") and state.rejected["4"].startswith("KG4")


def test_kg4_changes_the_remover_had_seen_stay() -> None:
    changes = [create("g"), add("1", A, B, Level.MANAGE, "g"), add("2", B, C, Level.READ, "1"), remove("3", A, B, "2")]
    state = resolve(changes)
    assert state.members == {Member.key(A): Level.MANAGE, Member.key(C): Level.READ}


def test_kg4_a_manager_re_added_after_removal_acts_again() -> None:
    # Found by hypothesis: B removed, re-added as manager, then B removes A. B's change follows the
    # removal, so it is not concurrent to it and counts (KG3 judges it on the re-add).
    changes = [
        create("g"),
        remove("r", A, B, "g"),
        add("a", A, B, Level.MANAGE, "r"),
        remove("x", B, A, "a"),
    ]
    state = resolve(changes)
    assert state.status("x") is None
    assert state.members == {Member.key(B): Level.MANAGE}


def test_kg4_mutual_removal_drops_both() -> None:
    changes = [create("g"), add("1", A, B, Level.MANAGE, "g"), remove("2", A, B, "1"), remove("3", B, A, "1")]
    state = resolve(changes)
    assert state.members == {Member.key(A): Level.MANAGE, Member.key(B): Level.MANAGE}
    assert {"2", "3"} <= set(state.rejected)


def test_kg5_concurrent_add_and_remove_remove_wins() -> None:
    changes = [
        create("g"),
        add("1", A, B, Level.MANAGE, "g"),
        add("2", A, C, Level.WRITE, "1"),
        remove("3", A, C, "2"),
        add("4", B, C, Level.MANAGE, "2"),  # concurrent with the removal
    ]
    assert Member.key(C) not in resolve(changes).members


def test_kg6_cuts_of_concurrent_removals_take_the_lowest() -> None:
    changes = [
        create("g"),
        add("1", A, B, Level.MANAGE, "g"),
        add("2", A, C, Level.WRITE, "1"),
        remove("3", A, C, "2", cuts={0: 5, 1: 2}),
        remove("4", B, C, "2", cuts={0: 3}),
    ]
    assert resolve(changes).cuts == {C: {0: 3, 1: 2}}


def test_kg6_a_writer_lowered_to_read_keeps_writes_up_to_the_cut() -> None:
    changes = [
        create("g"),
        add("1", A, B, Level.WRITE, "g"),
        Change("2", A, Action.ADD, frozenset({"1"}), Member.key(B), Level.READ, {0: 4}),
    ]
    state = resolve(changes)
    assert state.members[Member.key(B)] == Level.READ and state.cuts == {B: {0: 4}}


def test_tips_are_what_a_new_change_follows() -> None:
    changes = [
        create("g"),
        add("1", A, B, Level.MANAGE, "g"),
        add("2", A, C, Level.READ, "1"),
        add("3", B, D, Level.READ, "1"),
    ]
    state = resolve(changes)
    assert state.tips == {"2", "3"}
    assert state.status("2") is None and state.status("9") == "unknown change"


KEYS = [A, B, C, D]
E = "ee" * 32
GROUPS = ["0020" + "ee" * 32, "0020" + "ff" * 32]


@st.composite
def histories(draw: st.DrawFn) -> list[Change]:
    """Random membership changes by random authors (mostly managers), each naming a random set of earlier
    changes: concurrent changes, removals, re-adds, level changes, member groups and stray creates."""
    changes = [create("g")]
    for i in range(draw(st.integers(1, 25))):
        ids = [c.id for c in changes]
        # Mostly follow recent changes (long chains, re-adds after removals), sometimes old ones (concurrency).
        recent = st.sampled_from(ids[-3:])
        previous = draw(st.sets(st.one_of(recent, st.sampled_from(ids)), min_size=1, max_size=3))
        author = draw(st.sampled_from([A, *KEYS]))  # the creator more often: fewer changes refused by KG3
        cid = f"c{i:02d}"
        kind = draw(st.integers(0, 9))
        if kind == 0:
            member = Member.group(draw(st.sampled_from(GROUPS)))
        else:
            member = Member.key(draw(st.sampled_from([*KEYS, E])))
        cuts = draw(st.dictionaries(st.integers(0, 2), st.integers(1, 9), max_size=2))
        last = changes[-1]
        if kind == 8 and last.member is not None:
            # A rival of the last change: the same member and past, another author, action, level or cuts.
            action = draw(st.sampled_from([Action.ADD, Action.REMOVE]))
            level = draw(st.sampled_from(list(Level))) if action is Action.ADD else None
            changes.append(Change(cid, author, action, last.previous, last.member, level, cuts))
        elif kind == 9 and i % 5 == 0:
            changes.append(Change(cid, author, Action.CREATE, frozenset(previous if draw(st.booleans()) else ())))
        elif draw(st.booleans()):
            level = draw(st.sampled_from([*Level, Level.MANAGE, Level.MANAGE]))  # managers make races
            changes.append(Change(cid, author, Action.ADD, frozenset(previous), member, level, cuts))
        else:
            changes.append(Change(cid, author, Action.REMOVE, frozenset(previous), member, cuts=cuts))
    return changes


def comparable(state: GroupState) -> tuple[object, ...]:
    """A state as the brute-force reference spells it: rejections by check number, keys with cuts only."""
    return (
        state.group_id,
        dict(state.members),
        {key: dict(c) for key, c in state.cuts.items() if c},
        state.counted,
        state.pending,
        {cid: reason.split(":")[0] for cid, reason in state.rejected.items()},
        state.tips,
    )


@settings(max_examples=300, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_three_replicas_in_any_order_agree(changes: list[Change], rng: random.Random) -> None:
    states = []
    for _ in range(3):
        arrival = changes[:]
        rng.shuffle(arrival)
        # Resolve after every arrival, as a node does, and keep the final state.
        seen: list[Change] = []
        for change in arrival:
            seen.append(change)
            resolve(seen[-5:])  # partial views must not crash
        states.append(resolve(seen))
    assert states[0] == states[1] == states[2]


@settings(max_examples=600, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_resolution_equals_the_brute_force_reference(changes: list[Change], rng: random.Random) -> None:
    rng.shuffle(changes)
    assert comparable(resolve(changes)) == comparable(reference.resolve(changes))


@settings(max_examples=200, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_resolver_added_one_by_one_equals_a_fresh_resolution(changes: list[Change], rng: random.Random) -> None:
    arrival = changes[:]
    if rng.random() < 0.5:
        rng.shuffle(arrival)  # else causal order: mostly the incremental path
    resolver = Resolver()
    for i, change in enumerate(arrival, 1):
        assert resolver.add(change) == resolve(arrival[:i])


def test_resolver_appends_a_sequential_history_without_re_resolving() -> None:
    resolver = Resolver([create("g")])
    previous = "g"
    for i in range(50):
        cid = f"n{i:02d}"
        resolver.add(add(cid, A, KEYS[i % 4], Level.WRITE if i % 4 else Level.MANAGE, previous))
        previous = cid
    assert resolver.state == resolve(resolver._changes.values())


def test_kg3_a_grant_from_a_dropped_change_gives_no_authority() -> None:
    # Found by the brute-force reference: B, removed by A, concurrently makes C a manager (dropped, KG4). C
    # saw both and removes D. In the resolution of its past C is not a manager, so its removal is refused by
    # KG3 and must not drop D's concurrent change (it did when KG3 judged on authorised, not counted, changes).
    changes = [
        create("g"),
        add("1", A, B, Level.MANAGE, "g"),
        add("2", A, D, Level.MANAGE, "1"),
        remove("3", A, B, "2"),
        add("4", B, C, Level.MANAGE, "2"),
        remove("5", C, D, "3", "4"),
        add("6", D, E, Level.WRITE, "2"),
    ]
    state = resolve(changes)
    assert state.rejected["5"].startswith("KG3") and state.rejected["4"].startswith("KG4")
    assert state.members == {Member.key(A): Level.MANAGE, Member.key(D): Level.MANAGE, Member.key(E): Level.WRITE}


def test_kg3_a_grant_following_a_rejected_change_gives_no_authority() -> None:
    # Found by the brute-force reference: A's grant follows B's refused change, so it does not count, and B
    # (made a manager by it) cannot remove C.
    changes = [
        create("g"),
        add("1", A, C, Level.WRITE, "g"),
        add("2", B, D, Level.READ, "1"),  # B is no manager: KG3
        add("3", A, B, Level.MANAGE, "2"),  # follows a rejected change: KG4
        remove("4", B, C, "3"),
    ]
    state = resolve(changes)
    assert {cid: reason[:3] for cid, reason in state.rejected.items()} == {"2": "KG3", "3": "KG4", "4": "KG3"}
    assert state.members == {Member.key(A): Level.MANAGE, Member.key(C): Level.WRITE}
