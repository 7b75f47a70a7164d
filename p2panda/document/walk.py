"""The graph walk that decides who wins concurrent writes, run exactly as p2panda 0.8 specifies it.

The graph maps each operation id to its previous ids (edges point from a previous operation to the one
that follows it). Ids are compared as strings (for operation ids: lowercase hex, which is byte order).

    stack = [root]; visited = []
    while stack:
        cur = stack.pop(); visit(cur)
        loop:
            children = [c of cur not yet visited], sorted ascending
            if none: break
            child = smallest; push the others onto the stack in ascending order (largest ends on top)
            if child has more than one previous:
                if all of them are visited: push child (it is visited when popped)
                break
            visit(child); cur = child

Two concurrent children B < C are visited B then C; three B < C < D are visited B, D, C.

This is p2panda-rs 0.8.1's walk, and like it the order is not always topological: a merge pushed as
a larger sibling is visited when popped, even before its other parents (R; A, B after R; Q and M after
A with Q < M; M also after B: the order is R, A, Q, M, B). Nodes must agree with the reference, so we
do not correct it.

One deviation: a popped id that is already visited is skipped. The reference visits it again (and
applies its fields a second time). That can only happen when an operation's previous names another
operation together with one of that operation's ancestors: everything visited between an id being
pushed by one parent and being popped descends from that parent, so a second push needs a parent
that descends from the first. Honest writers never produce such a previous (it names the tips of a
view), and listing an operation twice in one walk would let it overwrite its own descendants.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

from p2panda.document.errors import DanglingPrevious, InvalidCreate, UnreachableOperations

__all__ = ["walk_order"]

K = TypeVar("K", bound=Hashable)


def walk_order(graph: Mapping[K, Sequence[K]]) -> list[K]:
    """All ids of `graph` in p2panda's walk order, starting from its single root (no previous)."""
    roots = [key for key, previous in graph.items() if not previous]
    if len(roots) != 1:
        raise InvalidCreate(f"a document graph has exactly one root, found {len(roots)}")
    children: dict[K, list[K]] = {key: [] for key in graph}
    for key, previous in graph.items():
        for parent in previous:
            if parent not in children:
                raise DanglingPrevious(f"{key} names previous {parent} outside the graph")
            children[parent].append(key)
    for key in children:
        if len(children[key]) > 1:
            children[key].sort(key=str)

    visited: set[K] = set()
    order: list[K] = []
    stack: list[K] = [roots[0]]
    while stack:
        current = stack.pop()
        if current in visited:  # the one deviation from the reference, see the module docstring
            continue
        visited.add(current)
        order.append(current)
        while True:
            pending = [c for c in children[current] if c not in visited]
            if not pending:
                break
            child, others = pending[0], pending[1:]
            stack.extend(others)
            previous = graph[child]
            if len(previous) > 1:
                if all(p in visited for p in previous):
                    stack.append(child)
                break
            visited.add(child)
            order.append(child)
            current = child
    if len(order) != len(graph):
        missing = sorted(str(k) for k in graph if k not in visited)
        raise UnreachableOperations(f"{len(missing)} operations are not reachable from the root: {missing[:3]}")
    return order
