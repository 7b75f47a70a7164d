"""Documents: the walk (vectors and larger graphs), reduction, deletion, views, checks D1-D7, properties."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2panda import Hash, KeyPair
from p2panda.document import (
    DanglingPrevious,
    DuplicateOperation,
    InvalidCreate,
    NoOperations,
    SchemaMismatch,
    UnknownViewTip,
    UnreachableOperations,
    build_document,
    walk_order,
)
from p2panda.entry import decode_entry
from p2panda.ids import DocumentViewId
from p2panda.operation import Operation, decode_operation, encode_operation
from p2panda.schema import SchemaId

SCHEMA = SchemaId.parse("message_0020d4f2294b7e953e70dd476b5de39d1679ff06a4936bca3ef6fb227e83a126a767")
OTHER = SchemaId.parse("venue_0020c65567ae37efea293e34a9c7d13f8f2bf23dbdc3b5c7b9ab46293111c48fc78b")
AUTHOR = KeyPair.from_private_key(bytes(32)).public_key

Op = tuple[Hash, Any, Operation]


def graph_from_edges(edges: list[list[str]]) -> dict[str, list[str]]:
    graph: dict[str, list[str]] = {}
    for parent, child in edges:
        graph.setdefault(parent, [])
        graph.setdefault(child, []).append(parent)
    return graph


def test_walk_vectors(vectors: dict[str, Any]) -> None:
    for case in vectors["walk_order"]["cases"]:
        assert walk_order(graph_from_edges(case["edges"])) == case["order"]


@pytest.mark.parametrize(
    "graph, order",
    [
        # merge of two branches
        ({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}, ["a", "b", "c", "d"]),
        # branches of different lengths
        ({"a": [], "b": ["a"], "e": ["b"], "f": ["e"], "c": ["a"]}, ["a", "b", "e", "f", "c"]),
        ({"a": [], "b": ["a"], "c": ["a"], "d": ["c"], "x": ["d"]}, ["a", "b", "c", "d", "x"]),
        # three branches, one longer, merged in one operation
        (
            {"a": [], "b": ["a"], "c": ["a"], "d": ["a"], "e": ["b"], "f": ["e", "c", "d"]},
            ["a", "b", "e", "d", "c", "f"],
        ),
        # four concurrent children: smallest first, then from the top of the stack (largest)
        ({"a": [], "b": ["a"], "c": ["a"], "d": ["a"], "e": ["a"]}, ["a", "b", "e", "d", "c"]),
        # a merge followed by a chain, then a second fork
        (
            {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": ["d"], "f": ["e"], "g": ["e"]},
            ["a", "b", "c", "d", "e", "f", "g"],
        ),
        # a merge whose smaller branch is longer
        ({"a": [], "b": ["a"], "c": ["b"], "z": ["a"], "m": ["c", "z"]}, ["a", "b", "c", "z", "m"]),
        # a child of the root that also follows a later operation comes after it
        ({"a": [], "b": ["a"], "m": ["a", "b"]}, ["a", "b", "m"]),
        ({"a": [], "n": ["a"], "m": ["a", "n"]}, ["a", "n", "m"]),
    ],
)
def test_walk_larger_graphs(graph: dict[str, list[str]], order: list[str]) -> None:
    assert walk_order(graph) == order


def test_walk_rejects_bad_graphs() -> None:
    with pytest.raises(InvalidCreate):
        walk_order({"a": [], "b": []})
    with pytest.raises(DanglingPrevious, match="x"):
        walk_order({"a": [], "b": ["x"]})
    with pytest.raises(InvalidCreate):
        walk_order({"a": ["b"], "b": ["a"]})
    with pytest.raises(UnreachableOperations):
        walk_order({"a": [], "b": ["c"], "c": ["b"]})


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[str]]:
    size = draw(st.integers(min_value=1, max_value=25))
    names = draw(st.lists(st.text("abcdefghij", min_size=3, max_size=3), min_size=size, max_size=size, unique=True))
    graph: dict[str, list[str]] = {names[0]: []}
    for i in range(1, size):
        previous = draw(st.lists(st.sampled_from(names[:i]), min_size=1, max_size=3, unique=True))
        graph[names[i]] = previous
    return graph


@given(dags(), st.randoms())
def test_walk_visits_every_operation_once_independent_of_input_order(
    graph: dict[str, list[str]], rnd: random.Random
) -> None:
    order = walk_order(graph)
    assert sorted(order) == sorted(graph)
    assert order[0] == next(k for k, v in graph.items() if not v)
    items = list(graph.items())
    rnd.shuffle(items)
    assert walk_order(dict(items)) == order


def test_walk_is_the_spec_walk_not_a_topological_order() -> None:
    # The minimal case: M (a merge of A and B) is A's larger child, pushed when A is visited and
    # popped before B, which p2panda-rs 0.8.1 visits last.
    graph = {"r": [], "a": ["r"], "b": ["r"], "k": ["a"], "m": ["a", "b"]}
    assert walk_order(graph) == ["r", "a", "k", "m", "b"]
    # A merge visited before its other parent, then its child: the only tip is not last.
    graph = {"r": [], "a": ["r"], "b": ["r"], "k": ["a"], "m": ["a", "b"], "t": ["k", "m"]}
    assert walk_order(graph) == ["r", "a", "k", "m", "t", "b"]


def test_walk_visits_an_operation_once_when_previous_names_an_ancestor() -> None:
    # z names a and its descendant x: pushed by a (as the larger sibling) and again by x, so
    # p2panda-rs 0.8.1 visits it twice (r, a, s, x, z, y, z); we visit it once.
    graph = {"r": [], "a": ["r"], "s": ["a"], "x": ["s"], "z": ["a", "x"], "y": ["z"]}
    assert walk_order(graph) == ["r", "a", "s", "x", "z", "y"]


# --- documents -------------------------------------------------------------------------------------


def op_id(label: str) -> Hash:
    return Hash.of(label.encode())


def create(label: str, **fields: Any) -> Op:
    return (op_id(label), AUTHOR, Operation.create(SCHEMA, fields))


def update(label: str, previous: list[str], **fields: Any) -> Op:
    return (op_id(label), AUTHOR, Operation.update(SCHEMA, DocumentViewId(map(op_id, previous)), fields))


def delete(label: str, previous: list[str]) -> Op:
    return (op_id(label), AUTHOR, Operation.delete(SCHEMA, DocumentViewId(map(op_id, previous))))


def test_node_flow_document(vectors: dict[str, Any]) -> None:
    steps = vectors["node_flow"]["steps"][2:]
    ops = [
        (
            Hash.from_hex(s["entry_hash"]),
            decode_entry(bytes.fromhex(s["entry"])).public_key,
            decode_operation(bytes.fromhex(s["operation"])),
        )
        for s in steps
    ]
    doc = build_document(ops)
    expected = json.loads(json.dumps(vectors["node_flow"]["graphql_after_step_3"]["response"]["data"]["doc"]))
    assert doc.id.hex() == expected["meta"]["documentId"]
    assert doc.owner.hex() == expected["meta"]["owner"]
    assert doc.fields == {"message": "Hello again"} and doc.is_edited and not doc.is_deleted
    assert str(doc.view_id) == steps[1]["entry_hash"]
    older = build_document(ops, view_id=DocumentViewId.from_str(expected["meta"]["viewId"]))
    assert older.fields == {"message": expected["fields"]["message"]} and not older.is_edited
    assert str(older.view_id) == expected["meta"]["viewId"]


def test_last_write_wins_per_field_and_writers() -> None:
    ops = [create("c", title="t0", body="b0"), update("u1", ["c"], title="t1"), update("u2", ["u1"], body="b2")]
    doc = build_document(ops)
    assert doc.fields == {"title": "t1", "body": "b2"}
    assert doc.field_writers == {"title": op_id("u1"), "body": op_id("u2")}
    assert doc.view_id == DocumentViewId([op_id("u2")]) and doc.is_edited


def test_concurrent_updates_resolve_by_walk_order() -> None:
    labels = ["x", "y", "z"]
    ops = [create("c", title="t0")] + [update(label, ["c"], title=label) for label in labels]
    ids = sorted(labels, key=lambda label: op_id(label).hex())
    # three concurrent children B < C < D are visited B, D, C: the middle id writes last
    doc = build_document(ops)
    assert doc.fields == {"title": ids[1]}
    assert doc.view_id == DocumentViewId(op_id(label) for label in labels)
    two = build_document(ops[:3])
    winner = max(labels[:2], key=lambda label: op_id(label).hex())
    assert two.fields == {"title": winner}


def by_id(*labels: str) -> list[str]:
    return sorted(labels, key=lambda label: op_id(label).hex())


def test_merge_walked_before_its_other_parent_loses_to_it() -> None:
    # The minimal case, as p2panda-rs 0.8.1 builds it: R = CREATE{x: R}; A = UPDATE(R){};
    # B = UPDATE(R){x: B}; Q = UPDATE(A){}; M = UPDATE(A, B){x: M}, ids A < B and Q < M. The walk is
    # R, A, Q, M, B, so x = B (a topological walk R, A, Q, B, M would give x = M).
    a, b = by_id("A1", "B1")
    q, m = by_id("Q1", "M1")
    ops = [
        create("R", x="R"),
        update(a, ["R"]),
        update(b, ["R"], x="B"),
        update(q, [a]),
        update(m, [a, b], x="M"),
    ]
    doc = build_document(ops)
    assert doc.operations == tuple(op_id(label) for label in ["R", a, q, m, b])
    assert doc.fields == {"x": "B"} and doc.field_writers == {"x": op_id(b)}
    assert doc.view_id == DocumentViewId([op_id(q), op_id(m)])


def test_merge_operation_sees_both_branches() -> None:
    ops = [
        create("c", a=0, b=0),
        update("l", ["c"], a=1),
        update("r", ["c"], b=2),
        update("m", ["l", "r"]),
    ]
    doc = build_document(ops)
    assert doc.fields == {"a": 1, "b": 2} and doc.view_id == DocumentViewId([op_id("m")])


def test_is_edited_only_when_a_field_was_overwritten() -> None:
    doc = build_document([create("c", a=0), update("u", ["c"])])
    assert not doc.is_edited and doc.fields == {"a": 0}


def test_delete_clears_and_stays_deleted() -> None:
    ops = [create("c", a=0), update("u", ["c"], a=1), delete("d", ["u"])]
    doc = build_document(ops)
    assert doc.is_deleted and doc.fields is None and doc.view_id == DocumentViewId([op_id("d")])
    later = build_document([*ops, update("late", ["c"], a=9)])
    assert later.is_deleted and later.fields is None
    assert build_document(ops, view_id=DocumentViewId([op_id("u")])).fields == {"a": 1}


def test_view_hash_is_hash_of_sorted_tips() -> None:
    ops = [create("c", a=0), update("x", ["c"], a=1), update("y", ["c"], a=2)]
    doc = build_document(ops)
    tips = sorted([op_id("x"), op_id("y")])
    assert doc.view_hash == Hash.of(b"".join(t.to_bytes() for t in tips))


def test_d1_no_operations() -> None:
    with pytest.raises(NoOperations):
        build_document([])


def test_d2_duplicate_ids() -> None:
    c = create("c", a=0)
    assert build_document([c, c]).fields == {"a": 0}
    with pytest.raises(DuplicateOperation, match=op_id("c").hex()):
        build_document([c, (op_id("c"), AUTHOR, Operation.create(SCHEMA, {"a": 1}))])


def test_d2_the_same_operation_with_a_nan_twice_is_a_repeat() -> None:
    # NaN != NaN: two decodings of one operation compare unequal as values, not as bytes.
    raw = encode_operation(Operation.create(SCHEMA, {"a": float("nan")}))
    doc = build_document([(op_id("c"), AUTHOR, decode_operation(raw)), (op_id("c"), AUTHOR, decode_operation(raw))])
    assert doc.fields is not None and math.isnan(float(doc.fields["a"]))  # type: ignore[arg-type]


def test_d3_exactly_one_create() -> None:
    with pytest.raises(InvalidCreate, match="found 2"):
        build_document([create("c", a=0), create("d", a=1)])
    with pytest.raises(InvalidCreate, match="found 0"):
        build_document([update("u", ["c"], a=1)])


def test_d4_schema_mismatch() -> None:
    other = (op_id("u"), AUTHOR, Operation.update(OTHER, DocumentViewId([op_id("c")]), {"a": 1}))
    with pytest.raises(SchemaMismatch, match="venue_"):
        build_document([create("c", a=0), other])


def test_d5_dangling_previous() -> None:
    with pytest.raises(DanglingPrevious, match=op_id("nowhere").hex()):
        build_document([create("c", a=0), update("u", ["nowhere"], a=1)])


def test_d6_cycle() -> None:
    with pytest.raises(UnreachableOperations):
        build_document([create("c", a=0), update("u", ["v"], a=1), update("v", ["u"], a=2)])


def test_d7_unknown_view_tip() -> None:
    with pytest.raises(UnknownViewTip, match=op_id("zz").hex()):
        build_document([create("c", a=0)], view_id=DocumentViewId([op_id("zz")]))


@st.composite
def document_ops(draw: st.DrawFn) -> list[Op]:
    size = draw(st.integers(min_value=1, max_value=20))
    ops = [create("op0", a=0, b=0)]
    for i in range(1, size):
        previous = draw(st.lists(st.integers(min_value=0, max_value=i - 1), min_size=1, max_size=3, unique=True))
        fields = draw(st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 99), max_size=2))
        if draw(st.integers(0, 15)) == 0:
            ops.append(delete(f"op{i}", [f"op{p}" for p in previous]))
        else:
            ops.append(update(f"op{i}", [f"op{p}" for p in previous], **fields))
    return ops


@settings(max_examples=150)
@given(document_ops(), st.randoms())
def test_document_does_not_depend_on_supply_order(ops: list[Op], rnd: random.Random) -> None:
    shuffled = list(ops)
    rnd.shuffle(shuffled)
    assert build_document(shuffled) == build_document(ops)


@settings(max_examples=150)
@given(document_ops(), st.data())
def test_view_equals_building_from_ancestors(ops: list[Op], data: st.DataObject) -> None:
    full = build_document(ops)
    tips = data.draw(st.lists(st.sampled_from([o[0] for o in ops]), min_size=1, max_size=3))
    view_id = DocumentViewId(tips)
    view = build_document(ops, view_id=view_id)
    by_id = {o[0]: o for o in ops}
    keep: set[Hash] = set()
    stack = list(view_id)
    while stack:
        current = stack.pop()
        if current in keep:
            continue
        keep.add(current)
        previous = by_id[current][2].previous
        stack.extend(previous or [])
    from_ancestors = build_document([o for o in ops if o[0] in keep])
    assert view == from_ancestors
    assert set(view.operations) <= set(full.operations)
