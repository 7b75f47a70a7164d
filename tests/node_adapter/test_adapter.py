"""One suite for every `node_adapter.Node`: the embedded node and a remote `panda node` must behave
the same to an application."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from node_adapter import Node, PublishRefused, QueryRefused
from p2panda import KeyPair
from p2panda.entry import sign_entry
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.operation import Operation, encode_operation
from p2panda.operation.value import PinnedRelation, PinnedRelationList, Relation, RelationList
from p2panda.schema import FieldType, Schema, SchemaId

ALICE = KeyPair.from_private_key(bytes(range(32)))
MESSAGE = "message_0020d4f2294b7e953e70dd476b5de39d1679ff06a4936bca3ef6fb227e83a126a767"
BOB = KeyPair.from_private_key(bytes(range(1, 33)))
FIELDS = {
    "title": FieldType.parse("str"),
    "votes": FieldType.parse("int"),
    "score": FieldType.parse("float"),
    "open": FieldType.parse("bool"),
    "blob": FieldType.parse("bytes"),
}


async def define(node: Node) -> Schema:
    return await node.define_schema(ALICE, "poll", "a poll", FIELDS)


def poll(i: int) -> dict[str, Any]:
    return {"title": f"poll {i:02d}", "votes": i * 7 % 11, "score": i / 4, "open": i % 2 == 0, "blob": bytes([i])}


async def test_node_flow_vectors(adapter: Node, vectors: dict[str, Any]) -> None:
    flow = vectors["node_flow"]
    steps = flow["steps"]
    key = KeyPair.from_private_key(bytes.fromhex(flow["private_key"])).public_key
    first = await adapter.next_args(key)
    assert (first.log_id, first.seq_num, first.backlink, first.skiplink) == (0, 1, None, None)
    await adapter.publish(bytes.fromhex(steps[0]["entry"]), bytes.fromhex(steps[0]["operation"]))
    after = await adapter.next_args(key, DocumentViewId.from_str(steps[0]["entry_hash"]))
    expected = flow["next_args_after_step_1"]
    assert (str(after.log_id), str(after.seq_num), after.backlink.hex() if after.backlink else None) == (
        expected["logId"],
        expected["seqNum"],
        expected["backlink"],
    )
    for step in steps[1:3]:
        await adapter.publish(bytes.fromhex(step["entry"]), bytes.fromhex(step["operation"]))
    schema = Schema(SchemaId.parse(MESSAGE), "A simple message", {"message": FieldType.parse("str")})
    expected_doc = flow["graphql_after_step_3"]["response"]["data"]["doc"]
    doc = await adapter.document(schema, DocumentId.from_hex(steps[2]["entry_hash"]))
    assert doc is not None and doc.fields == expected_doc["fields"]
    assert (doc.id.hex(), str(doc.view_id), doc.owner.hex()) == tuple(expected_doc["meta"].values())
    next_args = await adapter.publish(bytes.fromhex(steps[3]["entry"]), bytes.fromhex(steps[3]["operation"]))
    assert (next_args.log_id, next_args.seq_num) == (2, 3)
    updated = await adapter.document(schema, doc.id)
    assert updated is not None and updated.fields == {"message": "Hello again"} and updated.is_edited


async def test_create_update_delete_and_read_views(adapter: Node) -> None:
    schema = await define(adapter)
    doc = await adapter.create(ALICE, schema, poll(1))
    created = await adapter.document(schema, doc)
    assert created is not None and created.fields == poll(1) and created.owner == ALICE.public_key
    assert not created.is_edited
    v2 = await adapter.update(BOB, schema, created.view_id, {"votes": 99, "title": "renamed"})
    current = await adapter.document(schema, doc)
    assert current is not None and current.view_id == v2 and current.is_edited
    assert current.fields == {**poll(1), "votes": 99, "title": "renamed"}
    at_v2 = await adapter.document_at(schema, v2)
    assert at_v2 is not None and at_v2.fields == current.fields
    await adapter.delete(ALICE, schema, v2)
    assert await adapter.document(schema, doc) is None
    with pytest.raises(PublishRefused, match="deleted"):
        await adapter.update(ALICE, schema, v2, {"votes": 1})


async def test_relations_resolve_to_ids(adapter: Node) -> None:
    target = await define(adapter)
    linked = await adapter.define_schema(
        ALICE,
        "vote",
        "a vote",
        {"poll": FieldType.parse(f"relation({target.id})"), "at": FieldType.parse(f"pinned_relation({target.id})")},
    )
    doc = await adapter.create(ALICE, target, poll(3))
    view = DocumentViewId([doc])
    vote = await adapter.create(BOB, linked, {"poll": Relation(doc), "at": PinnedRelation(view)})
    read = await adapter.document(linked, vote)
    assert read is not None and read.fields == {"poll": Relation(doc), "at": PinnedRelation(view)}


async def test_older_views_pinned_by_a_relation_are_served(adapter: Node) -> None:
    target = await define(adapter)
    linked = await adapter.define_schema(
        ALICE, "pin", "a pin", {"at": FieldType.parse(f"pinned_relation({target.id})")}
    )
    doc = await adapter.create(ALICE, target, poll(4))
    first = DocumentViewId([doc])
    await adapter.create(BOB, linked, {"at": PinnedRelation(first)})
    await adapter.update(ALICE, target, first, {"votes": 1})
    older = await adapter.document_at(target, first)
    assert older is not None and older.fields == poll(4) and older.view_id == first


@pytest.mark.not_on_plain_node(
    "aquadoggo keeps an older view only while a pinned relation names it (it prunes the rest)"
)
async def test_unpinned_older_views_are_served(adapter: Node) -> None:
    schema = await define(adapter)
    doc = await adapter.create(ALICE, schema, poll(1))
    await adapter.update(BOB, schema, DocumentViewId([doc]), {"votes": 99})
    older = await adapter.document_at(schema, DocumentViewId([doc]))
    assert older is not None and older.fields == poll(1) and not older.is_edited


async def lists(adapter: Node) -> tuple[Schema, Schema]:
    target = await define(adapter)
    holder = await adapter.define_schema(
        ALICE,
        "shelf",
        "a shelf",
        {
            "items": FieldType.parse(f"relation_list({target.id})"),
            "views": FieldType.parse(f"pinned_relation_list({target.id})"),
        },
    )
    return target, holder


async def test_relation_lists_keep_their_order_and_duplicates(adapter: Node) -> None:
    target, holder = await lists(adapter)
    docs = [await adapter.create(ALICE, target, poll(i)) for i in range(4)]
    order = (docs[3], docs[0], docs[2], docs[0])
    views = tuple(DocumentViewId([d]) for d in (docs[1], docs[3], docs[1]))
    shelf = await adapter.create(BOB, holder, {"items": RelationList(order), "views": PinnedRelationList(views)})
    read = await adapter.document(holder, shelf)
    assert read is not None and read.fields == {"items": RelationList(order), "views": PinnedRelationList(views)}


@pytest.mark.not_on_plain_node("aquadoggo serves only the still-current views of a pinned relation list")
async def test_pinned_relation_lists_keep_views_that_were_updated_since(adapter: Node) -> None:
    target, holder = await lists(adapter)
    docs = [await adapter.create(ALICE, target, poll(i)) for i in range(3)]
    views = tuple(DocumentViewId([d]) for d in docs)
    shelf = await adapter.create(BOB, holder, {"items": RelationList(()), "views": PinnedRelationList(views)})
    for d in docs[:2]:
        await adapter.update(ALICE, target, DocumentViewId([d]), {"votes": 50})
    read = await adapter.document(holder, shelf)
    assert read is not None and read.fields is not None and read.fields["views"] == PinnedRelationList(views)


async def test_query_pages_filters_and_orders(adapter: Node) -> None:
    schema = await define(adapter)
    for i in range(30):
        await adapter.create(ALICE if i % 3 else BOB, schema, poll(i))
    seen: list[str] = []
    after = None
    while True:
        page = await adapter.query(schema, order_by="votes", direction="DESC", first=7, after=after)
        assert page.total == 30
        seen += [d.id.hex() for d in page.documents]
        if not page.has_next:
            break
        after = page.end_cursor
    assert len(seen) == len(set(seen)) == 30
    votes = await adapter.query(schema, order_by="votes", direction="DESC", first=30)
    values = [d.fields["votes"] for d in votes.documents if d.fields]
    assert values == sorted(values, reverse=True)
    open_polls = await adapter.query(schema, filter={"open": {"eq": True}, "title": {"contains": "1"}}, first=30)
    assert {d.fields["title"] for d in open_polls.documents if d.fields} == {
        "poll 10",
        "poll 12",
        "poll 14",
        "poll 16",
        "poll 18",
    }
    by_bob = await adapter.query(schema, meta={"owner": {"eq": BOB.public_key.hex()}}, first=30)
    assert by_bob.total == 10 and all(d.owner == BOB.public_key for d in by_bob.documents)
    with pytest.raises(QueryRefused, match='expected type "Cursor"'):
        await adapter.query(schema, after="00" * 34)
    with pytest.raises(QueryRefused, match="first"):
        await adapter.query(schema, first=0)


async def test_bad_input_is_refused_with_the_nodes_reason(adapter: Node) -> None:
    schema = await define(adapter)
    payload = encode_operation(Operation.create(schema.id, poll(1)))
    entry = sign_entry(ALICE, log_id=9, seq_num=1, payload=payload, backlink=None, skiplink=None)
    forged = entry[:-1] + bytes([entry[-1] ^ 1])
    with pytest.raises(PublishRefused, match="signature"):
        await adapter.publish(forged, payload)
    with pytest.raises(PublishRefused, match="payload"):
        await adapter.publish(entry, payload[:-1] + b"\x00")
    wrong = encode_operation(Operation.create(schema.id, {**poll(1), "votes": "many"}))
    with pytest.raises(PublishRefused, match="votes"):
        await adapter.publish(
            sign_entry(ALICE, log_id=9, seq_num=1, payload=wrong, backlink=None, skiplink=None), wrong
        )
    with pytest.raises(PublishRefused):
        await adapter.publish(b"\x00\x01", b"")
    assert (await adapter.query(schema)).total == 0


@pytest.mark.not_on_plain_node("aquadoggo has no subscriptions (RemoteNode.subscribe raises NotSupported)")
async def test_subscription_sees_changes_of_its_schemas(adapter: Node) -> None:
    schema = await define(adapter)
    other = await adapter.define_schema(ALICE, "note", "a note", {"text": FieldType.parse("str")})
    async with await adapter.subscribe(frozenset({str(schema.id)})) as changes:
        await adapter.create(ALICE, other, {"text": "not for this subscriber"})
        doc = await adapter.create(BOB, schema, poll(2))
        iterator = aiter(changes)
        change = await asyncio.wait_for(anext(iterator), 10)
        assert change.document_id == doc and change.schema_id == str(schema.id)
        assert change.public_key == BOB.public_key and change.view_id == DocumentViewId([doc])
        view = await adapter.update(ALICE, schema, change.view_id, {"votes": 5})
        change = await asyncio.wait_for(anext(iterator), 10)
        assert change.view_id == view and change.document_id == DocumentId(doc.to_bytes())
