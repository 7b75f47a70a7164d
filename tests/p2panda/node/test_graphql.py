"""The GraphQL API in-process: the bad-input table through `publish`, and paging over 1 000 documents."""

from __future__ import annotations

from typing import Any

import pytest

from p2panda import Hash, KeyPair
from p2panda.node import Node
from p2panda.node.api import GraphQLApi
from p2panda.node.store import Store
from p2panda.operation import Operation
from p2panda.schema import SchemaId

from .helpers import fingerprint, publish_operation
from .test_publish import KP, bad_inputs, publish_node_flow, seeded  # noqa: F401  (seeded is a fixture)

PUBLISH = "mutation P($e: String!, $o: String!) { publish(entry: $e, operation: $o) { logId seqNum } }"


async def test_bad_input_table_through_graphql(node: Node, seeded: dict[str, Any]) -> None:  # noqa: F811
    api = GraphQLApi(node)
    stored = await node.db.read(lambda conn: Store(conn).entry_at(KP.public_key.hex(), 2, 2))
    assert stored is not None
    seeded["stored_raw"], seeded["stored_payload"] = stored.raw, stored.payload
    cases = [(name, entry.hex(), op.hex()) for name, entry, op, _ in bad_inputs(seeded)]
    cases += [
        ("odd-length hex entry", "abc", "00"),
        ("non-hex entry", "zz" * 10, "00"),
        ("non-hex operation", "00", "xyz"),
    ]
    assert len(cases) >= 20
    before = await fingerprint(node)
    for name, entry, operation in cases:
        result = await api.execute(PUBLISH, {"e": entry, "o": operation})
        assert result["data"] is None and result["errors"][0]["message"], name
        assert await fingerprint(node) == before, f"{name} changed the store"
    result = await api.execute(PUBLISH, {"e": "zz", "o": "00"})
    assert result["errors"][0]["message"] == 'Invalid value for argument "entry", expected type "EncodedEntry"'
    name, entry, op, _ = next(c for c in bad_inputs(seeded) if c[0] == "payload hash mismatch")
    result = await api.execute(PUBLISH, {"e": entry.hex(), "o": op.hex()})
    assert "operation needs to match payload hash of encoded entry" in result["errors"][0]["message"]


async def test_document_query_argument_errors(node: Node, vectors: dict[str, Any]) -> None:
    await publish_node_flow(node, vectors)
    api = GraphQLApi(node)
    schema = vectors["node_flow"]["steps"][1]["schema_id"]
    doc = vectors["node_flow"]["steps"][2]["entry_hash"]
    both = await api.execute(f'{{ {schema}(id: "{doc}", viewId: "{doc}") {{ meta {{ owner }} }} }}')
    assert both["errors"][0]["message"] == "Must only provide `id` or `viewId` argument"
    neither = await api.execute(f"{{ {schema} {{ meta {{ owner }} }} }}")
    assert neither["errors"][0]["message"] == "Must provide either `id` or `viewId` argument"
    unknown = await api.execute(f'{{ {schema}(id: "{Hash.of(b"x").hex()}") {{ meta {{ owner }} }} }}')
    assert unknown == {"data": {schema: None}}
    zero = await api.execute(f"{{ all_{schema}(first: 0) {{ totalCount }} }}")
    assert "first must be positive" in zero["errors"][0]["message"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_paging_1000_documents_every_ordering(node: Node, vectors: dict[str, Any]) -> None:
    await publish_node_flow(node, vectors)
    schema = SchemaId.parse(vectors["node_flow"]["steps"][1]["schema_id"])
    authors = [KeyPair.from_private_key(bytes([i + 1]) * 32) for i in range(4)]
    texts = [f"message {(i * 7919) % 1000:04d}" for i in range(1000)]
    for i, text in enumerate(texts):
        await publish_operation(node, authors[i % 4], Operation.create(schema, {"message": text}))
    api = GraphQLApi(node)
    name = str(schema)
    expected_ids = {d.id.hex() for d in await node.documents(name)}
    for order_by in ("DOCUMENT_ID", "DOCUMENT_VIEW_ID", "message"):
        for direction in ("ASC", "DESC"):
            for filter_ in ("", 'filter: {message: {gte: "message 0500"}}'):
                seen: list[tuple[str, str]] = []
                messages: list[str] = []
                after = ""
                while True:
                    cursor = f', after: "{after}"' if after else ""
                    query = (
                        f"{{ all_{name}(first: 97, orderBy: {order_by}, orderDirection: {direction} {filter_}{cursor}) "
                        "{ totalCount hasNextPage endCursor documents { cursor meta { documentId viewId } fields { message } } } }"
                    )
                    page = (await api.execute(query))["data"][f"all_{name}"]
                    for item in page["documents"]:
                        key = {
                            "DOCUMENT_ID": item["meta"]["documentId"],
                            "DOCUMENT_VIEW_ID": item["meta"]["viewId"],
                            "message": item["fields"]["message"],
                        }[order_by]
                        seen.append((key, item["meta"]["documentId"]))
                        messages.append(item["fields"]["message"])
                    if not page["hasNextPage"]:
                        break
                    after = page["endCursor"]
                ids = [doc_id for _, doc_id in seen]
                assert len(ids) == len(set(ids)) == page["totalCount"]
                keys = [k for k, _ in seen]
                assert keys == sorted(keys, reverse=direction == "DESC")
                if filter_:
                    assert len(ids) == 500 and all(
                        k >= "message 0500" for k in [t for t in (i["fields"]["message"] for i in page["documents"])]
                    )
                else:
                    assert set(ids) == expected_ids and len(ids) == 1001
