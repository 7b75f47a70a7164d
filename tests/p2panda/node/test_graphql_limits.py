"""GraphQL limits in-process (Q2, Q4, Q8 of p2panda/node/api/cost.py); the probes against a real node are in
tests/abuse/test_graphql_cost.py."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

from graphql import get_introspection_query, parse

from keygroups.schemas import BUNDLE_PATH as KEY_GROUP_BUNDLE
from p2panda.node import Node
from p2panda.node.api import GraphQLApi
from p2panda.node.api.cost import GraphQLLimits, check_cost
from p2panda.node.bundle import read_bundle


async def test_the_parse_cache_is_bounded_by_bytes(node: Node) -> None:
    api = GraphQLApi(node, GraphQLLimits(max_aliases=10_000, parse_cache_bytes=2 * 1024 * 1024))
    api.schema()
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        # 20 different valid 16 KB queries: about 30 MB of syntax trees if they were all kept.
        for n in range(20):
            query = "{ " + " ".join(f"a{n}_{i}_{'x' * 24}: __typename" for i in range(400)) + " }"
            assert len(query) > 16_000
            answer = await api.execute(query)
            assert answer["data"][f"a{n}_0_{'x' * 24}"] == "Query"
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert kept < 4 * 1024 * 1024, kept


async def test_fragments_are_counted_where_they_are_spread(node: Node) -> None:
    api = GraphQLApi(node, GraphQLLimits(max_cost=1000, max_aliases=1000))
    # Each fragment spreads the next twice: 2^12 fields from a query of a few hundred bytes.
    fragments = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(12))
    query = "{ ...F0 } " + fragments + " fragment F12 on Query { __typename }"
    answer = await api.execute(query)
    assert answer == {"data": None, "errors": [{"message": "query costs more than 1000 (graphql_limits.max_cost)"}]}
    # A cycle is left to validation, which names it.
    cyclic = await api.execute("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }")
    assert cyclic["errors"][0]["message"] == "Cannot spread fragment 'A' within itself via 'B'."


async def test_depth_counts_fields_inside_fragments(node: Node) -> None:
    api = GraphQLApi(node, GraphQLLimits(max_depth=4))
    fine = await api.execute("{ __schema { queryType { ...T } } } fragment T on __Type { fields { name } }")
    assert "errors" not in fine
    deep = await api.execute("{ __schema { queryType { ...T } } } fragment T on __Type { fields { type { name } } }")
    assert deep["errors"] == [{"message": "query is more than 4 fields deep (at 'name'; graphql_limits.max_depth)"}]


def _keys(value: Any) -> int:
    """Fields in an answer: each is one key of an object in it."""
    if isinstance(value, dict):
        return len(value) + sum(_keys(v) for v in value.values())
    if isinstance(value, list):
        return sum(_keys(v) for v in value)
    return 0


async def test_introspection_costs_the_fields_it_answers(node: Node) -> None:
    # Q4: introspection is counted over the schema itself, field for field what graphql-core answers.
    await node.ingest_bundle(read_bundle(KEY_GROUP_BUNDLE))  # a schema with relation lists and filters
    api = GraphQLApi(node)
    schema = api.schema()
    queries = [
        get_introspection_query(descriptions=True, input_value_deprecation=True),
        "{ __schema { types { name fields { name args { name type { name kind ofType { name } } } } } } }",
        '{ q: __type(name: "Query") { ...T } m: __type(name: "MutationRoot") { ...T } } '
        "fragment T on __Type { name fields { name type { ... on __Type { kind ofType { kind } } } } }",
        "{ __schema { queryType { name } directives { name args { name } locations } } __typename }",
    ]
    for query in queries:
        answer = await api.execute(query)
        assert "errors" not in answer, answer
        assert check_cost(schema, parse(query).definitions, {}, None, GraphQLLimits()) == _keys(answer["data"])
    assert check_cost(schema, parse("{ __schema { types { name } } }").definitions, {}, None, GraphQLLimits()) == (
        2 + len(schema.type_map)
    )
    by_variable = parse("query($n: String!) { __type(name: $n) { name fields { name } } }").definitions
    assert check_cost(schema, by_variable, {"n": "NoSuchType"}, None, GraphQLLimits()) == 1
    assert check_cost(schema, by_variable, {"n": "Query"}, None, GraphQLLimits()) == 3 + len(
        schema.query_type.fields  # type: ignore[union-attr]
    )
    # Listing the schema 60 times costs what answering it takes: refused before it runs.
    listed = "__schema { types { name fields { name args { name type { name kind } } type { name kind } } } }"
    answer = await api.execute("{ " + " ".join(f"a{i}: {listed}" for i in range(60)) + " }")
    assert answer == {
        "data": None,
        "errors": [
            {
                "message": "query costs more than 20000 (each introspection field counts once per type, field, "
                "argument or value of the schema it lists; over the limit at 'name'; graphql_limits.max_cost)"
            }
        ],
    }


async def test_fragments_nest_at_most_the_depth_limit(node: Node) -> None:
    # Q2: a chain of 1 700 spreads overflowed the recursion of the walk (a RecursionError, a 500).
    api = GraphQLApi(node, GraphQLLimits(max_depth=4))

    def chain(length: int) -> str:
        fragments = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(length - 1))
        return f"{{ ...F0 }} {fragments} fragment F{length - 1} on Query {{ __typename }}"

    assert await api.execute(chain(4)) == {"data": {"__typename": "Query"}}
    assert await api.execute(chain(5)) == {
        "data": None,
        "errors": [{"message": "query nests fragments more than 4 deep (at 'F4'; graphql_limits.max_depth)"}],
    }
    assert (await GraphQLApi(node).execute(chain(1700)))["errors"] == [
        {"message": "query nests fragments more than 16 deep (at 'F16'; graphql_limits.max_depth)"}
    ]
