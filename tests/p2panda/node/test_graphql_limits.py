"""GraphQL limits in-process (Q2, Q4, Q8 of p2panda/node/api/cost.py); the probes against a real node are in
tests/abuse/test_graphql_cost.py."""

from __future__ import annotations

import gc
import tracemalloc

from p2panda.node import Node
from p2panda.node.api import GraphQLApi
from p2panda.node.api.cost import GraphQLLimits


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
