"""Membership documents <-> changes (round trips, malformed fields named), and nested-group flattening
(N1-N3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keygroups import Action, Change, Level, Member, resolve
from keygroups.changes import change_fields, change_of
from keygroups.errors import MalformedChange
from keygroups.policy import MAX_DEPTH, flatten
from keygroups.resolve import GroupState

GROUP = "0020" + "ab" * 32
hex64 = st.text("0123456789abcdef", min_size=64, max_size=64)
ids = hex64.map(lambda h: "0020" + h)
members = st.one_of(hex64.map(Member.key), ids.map(Member.group))


@settings(max_examples=200)
@given(
    st.sampled_from([Action.ADD, Action.REMOVE]),
    members,
    st.sampled_from(list(Level)),
    st.sets(ids, min_size=1, max_size=4),
    st.dictionaries(st.integers(0, 2**64 - 1), st.integers(1, 2**64 - 1), max_size=3),
)
def test_fields_round_trip(
    action: Action, member: Member, level: Level, previous: set[str], cuts: dict[int, int]
) -> None:
    lvl = level if action is Action.ADD else None
    fields = change_fields(GROUP, action, member, lvl, previous, cuts)
    group, change = change_of("id", "aa" * 32, fields)
    assert group == GROUP
    assert change == Change("id", "aa" * 32, action, frozenset(previous), member, lvl, cuts)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("action", "create", "action create"),
        ("action", "grant", "neither add nor remove"),
        ("member", "key:xyz", "member 'key:xyz'"),
        ("member", "user:" + "aa" * 32, "neither key"),
        ("level", "owner", "level 'owner'"),
        ("previous", "", "previous names no change"),
        ("previous", "0020zz", "previous '0020zz'"),
        ("cuts", "1:0", "cut '1:0'"),
        ("cuts", "1:2 1:3", "cuts name log 1 twice"),
        ("cuts", "18446744073709551616:1", "cut '18446744073709551616:1'"),
    ],
)
def test_malformed_fields_are_named(name: str, value: str, message: str) -> None:
    fields = change_fields(GROUP, Action.ADD, Member.key("aa" * 32), Level.READ, [GROUP])
    with pytest.raises(MalformedChange, match=message):
        change_of("id", "aa" * 32, {**fields, name: value})


@settings(max_examples=300)
@given(st.sampled_from(["action", "member", "level", "previous", "cuts"]), st.text(max_size=80))
def test_mutated_fields_parse_or_are_refused(name: str, value: str) -> None:
    fields = change_fields(GROUP, Action.ADD, Member.key("aa" * 32), Level.READ, [GROUP])
    try:
        _, change = change_of("id", "aa" * 32, {**fields, name: value})
    except MalformedChange:
        return
    assert change_fields(GROUP, change.action, change.member, change.level, change.previous, change.cuts)[name] in (
        value,
        " ".join(sorted(value.split())),
    )


def state(group: str, members: dict[Member, Level]) -> GroupState:
    return GroupState(group, members, {}, frozenset(), frozenset(), {})


def key(i: int) -> str:
    return f"{i:064x}"


def test_n1_nested_members_write_at_most() -> None:
    states = {
        "outer": state("outer", {Member.key(key(1)): Level.MANAGE, Member.group("team"): Level.MANAGE}),
        "team": state("team", {Member.key(key(2)): Level.MANAGE, Member.key(key(3)): Level.READ}),
    }
    access = flatten("outer", states.get)
    assert access is not None
    assert access.levels == {key(1): Level.MANAGE, key(2): Level.WRITE, key(3): Level.READ}


def test_n2_depth_limit_and_n3_cycles() -> None:
    chain = {f"g{i}": state(f"g{i}", {Member.group(f"g{i + 1}"): Level.WRITE}) for i in range(MAX_DEPTH + 2)}
    chain[f"g{MAX_DEPTH}"] = state(
        f"g{MAX_DEPTH}", {Member.key(key(1)): Level.WRITE, Member.group(f"g{MAX_DEPTH + 1}"): Level.WRITE}
    )
    chain[f"g{MAX_DEPTH + 1}"] = state(f"g{MAX_DEPTH + 1}", {Member.key(key(2)): Level.WRITE})
    access = flatten("g0", chain.get)
    assert access is not None and access.levels == {key(1): Level.WRITE}  # g5's key is too deep
    cycle = {
        "a": state("a", {Member.group("b"): Level.WRITE, Member.key(key(1)): Level.WRITE}),
        "b": state("b", {Member.group("a"): Level.WRITE, Member.key(key(2)): Level.WRITE}),
    }
    access = flatten("a", cycle.get)
    assert access is not None and access.levels == {key(1): Level.WRITE, key(2): Level.WRITE}


def test_cuts_of_a_removed_writer_count_up_to_the_cut() -> None:
    changes = [
        Change("g", key(1), Action.CREATE),
        Change("1", key(1), Action.ADD, frozenset({"g"}), Member.key(key(2)), Level.WRITE),
        Change("2", key(1), Action.REMOVE, frozenset({"1"}), Member.key(key(2)), cuts={0: 3}),
    ]
    resolved = resolve(changes)
    access = flatten("g", {"g": resolved}.get)
    assert access is not None
    assert access.refusal(key(2), 0, 3) is None
    past = access.refusal(key(2), 0, 4)
    assert past is not None and "past its cut 3" in past
    other_log = access.refusal(key(2), 1, 1)
    assert other_log is not None and "not a member" in other_log
