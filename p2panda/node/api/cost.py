"""Bounds on the work one GraphQL request can make the node do, so that one client cannot take the node's
memory or CPU (a 213 KB query fanning out over relation lists used to take 1.7 GB and minutes of CPU).

Checked in this order, each refusal a `CostError` naming the value and the setting that bounds it:

- Q1 the query text is at most `max_query_bytes` (UTF-8), checked before it is parsed.
- Q2 the query is at most `max_depth` fields deep (fragments expanded), and spreads fragments inside
  fragments at most `max_depth` deep (a chain of 1 700 of them overflowed the stack of the walk).
- Q3 the query has at most `max_aliases` aliased fields.
- Q4 its estimated cost is at most `max_cost`: every field selected costs 1 per time it can be answered, so
  the fields below a root collection (`all_S`) count `first` times (25 when not given). Q2-Q4 run on the
  parsed query before validation (validating a query with thousands of aliases is itself quadratic) and
  stop counting as soon as a limit is passed. Introspection (`__schema`, `__type` on the query root) is
  counted over the schema itself: each field selected costs 1 for every type, field, argument, enum value
  or directive it is answered for (`introspection.py`), so a query listing the schema many times costs
  what answering it takes (a 60-alias one counted 900 by its text, answered 3.6 MB in 0.9 s). A relation list's length is known only once it is loaded:
- Q5 while the query runs, every page of a collection or relation list is charged, before its items are
  answered, its number of items times the cost of the fields selected under it; the charges of a request
  add up to at most `max_cost`. Nested relation lists thus multiply by their real lengths, not by `first`
  (clients ask for `first: 10000` to get a whole list).
- Q6 answering relations and relation lists loads at most `max_documents` documents in all (a relation list
  is loaded whole before it is paged, so `first` does not bound it); they are loaded in batches of
  `BATCH` documents, one database read per batch.
- Q7 a query runs for at most `time_budget` seconds (mutations are not cut short: a publish always runs to
  its end); a query whose client hangs up is cancelled at once (the HTTP server's handler cancellation).
- Q8 parsed queries are cached up to `parse_cache_bytes` of estimated memory (`AST_BYTES_PER_CHAR` bytes per
  character of query text, measured with tracemalloc on graphql-core 3.3: 90-110).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    get_named_type,
)

from p2panda.node.api.introspection import ROOTS, answered
from p2panda.node.errors import NodeError

__all__ = ["AST_BYTES_PER_CHAR", "BATCH", "CostError", "GraphQLLimits", "Meter", "check_cost", "check_size"]

AST_BYTES_PER_CHAR = 128
BATCH = 64
DEFAULT_FIRST = 25


class CostError(NodeError):
    """A GraphQL request over one of the limits (Q1-Q7)."""


@dataclass(frozen=True, slots=True)
class GraphQLLimits:
    max_query_bytes: int = 64 * 1024
    max_depth: int = 16
    max_aliases: int = 64
    max_cost: int = 20_000
    max_documents: int = 5_000
    time_budget: float = 10.0
    parse_cache_bytes: int = 16 * 1024 * 1024


def check_size(query: str, limits: GraphQLLimits) -> None:
    """Q1."""
    size = len(query.encode())
    if size > limits.max_query_bytes:
        raise CostError(
            f"query is {size} bytes, over the limit of {limits.max_query_bytes} (graphql_limits.max_query_bytes)"
        )


class _Walk:
    """Q2-Q4 over one operation, fragments expanded; with `multiply` False, the cost of one item (Q5)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        limits: GraphQLLimits,
        multiply: bool = True,
    ) -> None:
        self.multiply = multiply
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.limits = limits
        self.cost = 0
        self.visits = 0

    def selections(
        self,
        node: SelectionSetNode | None,
        parent: GraphQLNamedType | None,
        depth: int,
        fan_out: int,
        path: tuple[str, ...],
    ) -> None:
        if node is None:
            return
        for selection in node.selections:
            # Fragments that only spread other fragments cost nothing themselves but could nest exponentially.
            self.visits += 1
            if self.visits > self.limits.max_cost:
                raise CostError(f"query costs more than {self.limits.max_cost} (graphql_limits.max_cost)")
            if isinstance(selection, FieldNode):
                self.field(selection, parent, depth, fan_out, path)
            elif isinstance(selection, InlineFragmentNode):
                condition = (
                    self.schema.get_type(selection.type_condition.name.value) if selection.type_condition else None
                )
                self.selections(selection.selection_set, condition or parent, depth, fan_out, path)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in path:
                    continue  # unknown or cyclic: validation reports it
                self._nesting(name, path)
                condition = self.schema.get_type(fragment.type_condition.name.value)
                self.selections(fragment.selection_set, condition, depth, fan_out, (*path, name))

    def field(
        self, node: FieldNode, parent: GraphQLNamedType | None, depth: int, fan_out: int, path: tuple[str, ...]
    ) -> None:
        depth += 1
        if depth > self.limits.max_depth:
            raise CostError(
                f"query is more than {self.limits.max_depth} fields deep (at {node.name.value!r}; "
                "graphql_limits.max_depth)"
            )
        self.cost += fan_out
        if self.cost > self.limits.max_cost:
            raise CostError(
                f"query costs more than {self.limits.max_cost} (each field counts once per item of every "
                f"collection above it; over the limit at {node.name.value!r}; graphql_limits.max_cost)"
            )
        if node.name.value in ROOTS and parent is not None and parent is self.schema.query_type:
            # Q4 for introspection: the depth on the query's text, the cost over the schema's real lists.
            self.selections(node.selection_set, None, depth, 0, path)
            self.introspected(node.selection_set, ROOTS[node.name.value], self._roots(node), fan_out, path)
            return
        child: GraphQLNamedType | None = None
        if isinstance(parent, GraphQLObjectType):
            definition = parent.fields.get(node.name.value)
            if definition is not None:
                child = get_named_type(definition.type)
                if self.multiply and depth == 1 and "first" in definition.args:
                    fan_out *= self._first(node, definition.args["first"].default_value)
        self.selections(node.selection_set, child, depth, fan_out, path)

    def introspected(
        self, node: SelectionSetNode | None, kind: str, items: Sequence[Any], fan_out: int, path: tuple[str, ...]
    ) -> None:
        """Q4: each field selected costs `fan_out` for every item of the schema it is answered for."""
        if node is None:
            return
        for item in items:
            for selection in node.selections:
                if not isinstance(selection, FieldNode):
                    self.visits += 1  # a field costs at least 1 (`fan_out`): only fragments need counting here
                    if self.visits > self.limits.max_cost:
                        raise CostError(f"query costs more than {self.limits.max_cost} (graphql_limits.max_cost)")
                if isinstance(selection, FieldNode):
                    self.cost += fan_out
                    if self.cost > self.limits.max_cost:
                        raise CostError(
                            f"query costs more than {self.limits.max_cost} (each introspection field counts once "
                            f"per type, field, argument or value of the schema it lists; over the limit at "
                            f"{selection.name.value!r}; graphql_limits.max_cost)"
                        )
                    below = answered(self.schema, kind, item, selection.name.value)
                    if below is not None:
                        self.introspected(selection.selection_set, below[0], below[1], fan_out, path)
                elif isinstance(selection, InlineFragmentNode):
                    self.introspected(selection.selection_set, kind, (item,), fan_out, path)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if fragment is not None and name not in path:
                        self._nesting(name, path)
                        self.introspected(fragment.selection_set, kind, (item,), fan_out, (*path, name))

    def _nesting(self, name: str, path: tuple[str, ...]) -> None:
        """Q2 for fragments spread inside fragments: a chain of them is walked by recursion."""
        if len(path) >= self.limits.max_depth:
            raise CostError(
                f"query nests fragments more than {self.limits.max_depth} deep (at {name!r}; graphql_limits.max_depth)"
            )

    def _roots(self, node: FieldNode) -> Sequence[Any]:
        """What `__schema` or `__type(name:)` answers."""
        if node.name.value == "__schema":
            return (self.schema,)
        for argument in node.arguments or ():
            value = argument.value
            name = self.variables.get(value.name.value) if isinstance(value, VariableNode) else None
            if isinstance(value, StringValueNode):
                name = value.value
            if argument.name.value == "name" and isinstance(name, str):
                found = self.schema.get_type(name)
                return () if found is None else (found,)
        return ()

    def _first(self, node: FieldNode, default: Any) -> int:
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return max(1, int(value.value))
            if isinstance(value, VariableNode) and isinstance(self.variables.get(value.name.value), int):
                return max(1, int(self.variables[value.name.value]))
        return default if isinstance(default, int) and default > 0 else DEFAULT_FIRST


def _aliases(node: SelectionSetNode | None) -> int:
    if node is None:
        return 0
    count = 0
    for selection in node.selections:
        if isinstance(selection, FieldNode) and selection.alias is not None:
            count += 1
        if isinstance(selection, FieldNode | InlineFragmentNode):
            count += _aliases(selection.selection_set)
    return count


def check_cost(
    schema: GraphQLSchema,
    definitions: tuple[Any, ...],
    variables: Mapping[str, Any],
    operation_name: str | None,
    limits: GraphQLLimits,
) -> int:
    """Q2-Q4 for the operation that will run; its estimated cost."""
    fragments = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
    aliases = sum(_aliases(d.selection_set) for d in definitions if hasattr(d, "selection_set"))
    if aliases > limits.max_aliases:
        raise CostError(
            f"query has {aliases} aliases, over the limit of {limits.max_aliases} (graphql_limits.max_aliases)"
        )
    operations = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
    walk = _Walk(schema, fragments, variables, limits)
    for operation in operations:
        root = schema.get_root_type(operation.operation)
        walk.selections(operation.selection_set, root, 0, 1, ())
    return walk.cost


class Meter:
    """Q5-Q7 while a query runs: cost charged and documents loaded so far, and the deadline. For a
    subscription, `pace`: awaited once each event has arrived, before its answer is built (F6 in
    `fairness.py`)."""

    def __init__(
        self,
        limits: GraphQLLimits,
        schema: GraphQLSchema | None = None,
        fragments: Mapping[str, FragmentDefinitionNode] | None = None,
        variables: Mapping[str, Any] | None = None,
        pace: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.limits = limits
        self.pace = pace
        self.cost = 0
        self.loaded = 0
        self.deadline = time.monotonic() + limits.time_budget
        self._schema = schema
        self._fragments = fragments or {}
        self._variables = variables or {}
        self._item_costs: dict[int, int] = {}
        self._over: CostError | None = None

    def _fail(self, error: CostError) -> CostError:
        # Once over a limit, every resolver still to run fails at once (the request is refused as a whole).
        self._over = error
        return error

    def charge_page(self, items: int, nodes: Sequence[FieldNode], of_type: GraphQLNamedType) -> None:
        """Q5: before `items` items of a collection or relation list selected by `nodes` are answered."""
        node = nodes[0]
        per_item = self._item_costs.get(id(node))
        if per_item is None:
            if self._schema is None:
                per_item = 1
            else:
                walk = _Walk(self._schema, self._fragments, self._variables, self.limits, multiply=False)
                try:
                    for each in nodes:
                        walk.selections(each.selection_set, of_type, 0, 1, ())
                except CostError as exc:
                    raise self._fail(exc) from None
                per_item = max(1, walk.cost)
            self._item_costs[id(node)] = per_item
        self.cost += max(1, items) * per_item
        if self.cost > self.limits.max_cost:
            raise self._fail(
                CostError(
                    f"query costs more than {self.limits.max_cost} once its relation lists are loaded "
                    f"(at {node.name.value!r}; graphql_limits.max_cost)"
                )
            )
        self.check_time()

    def charge(self, documents: int) -> None:
        """Q6: before loading `documents` more documents."""
        self.loaded += documents
        if self.loaded > self.limits.max_documents:
            raise self._fail(
                CostError(
                    f"query loads more than {self.limits.max_documents} related documents "
                    "(graphql_limits.max_documents)"
                )
            )
        self.check_time()

    def check_time(self) -> None:
        if self._over is not None:
            raise self._over
        if time.monotonic() > self.deadline:
            raise self._fail(CostError(self.timeout_message()))

    def timeout_message(self) -> str:
        return f"query ran longer than {self.limits.time_budget:g} s and was stopped (graphql_limits.time_budget)"
