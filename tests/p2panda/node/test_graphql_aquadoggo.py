"""GraphQL answers that follow aquadoggo 0.8.1, as measured against it with the same data and queries
(the runner of `make interop`): relation lists in their own order, an empty page's endCursor, the
`deleted` meta filter, argument error texts. And where we keep our own answer on purpose: pinned
relation lists keep views that were updated since (aquadoggo drops them), `contains` is literal
(aquadoggo's LIKE treats `_` and `%` as wildcards), `edited` filters work (aquadoggo fails with an SQL
error)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node_adapter import EmbeddedNode
from p2panda import KeyPair
from p2panda.ids import DocumentViewId
from p2panda.node.api import GraphQLApi
from p2panda.operation.value import PinnedRelationList, RelationList
from p2panda.schema import FieldType

ALICE = KeyPair.from_private_key(bytes(range(32)))


@pytest.fixture
async def data(tmp_path: Path) -> Any:
    async with EmbeddedNode(tmp_path) as node:
        item = await node.define_schema(
            ALICE, "item", "an item", {"title": FieldType.parse("str"), "n": FieldType.parse("int")}
        )
        ids = [await node.create(ALICE, item, {"title": t, "n": i}) for i, t in enumerate(["a_b", "a%b", "axb", "z"])]
        await node.update(ALICE, item, DocumentViewId([ids[1]]), {"n": 9})
        await node.delete(ALICE, item, DocumentViewId([ids[2]]))
        box = await node.define_schema(
            ALICE,
            "box",
            "a box",
            {
                "items": FieldType.parse(f"relation_list({item.id})"),
                "pinned": FieldType.parse(f"pinned_relation_list({item.id})"),
            },
        )
        order = (ids[3], ids[0], ids[1], ids[3])
        pinned = tuple(DocumentViewId([ids[i]]) for i in (0, 1, 3))
        b = await node.create(ALICE, box, {"items": RelationList(order), "pinned": PinnedRelationList(pinned)})
        await node.update(ALICE, item, DocumentViewId([ids[0]]), {"n": 7})  # its pinned view is now older
        yield GraphQLApi(node.node), str(item.id), str(box.id), ids, b


def doc_ids(page: dict[str, Any]) -> list[str]:
    return [d["meta"]["documentId"] for d in page["documents"]]


async def test_relation_lists_keep_their_order_unless_ordered(data: Any) -> None:
    api, _, box, ids, b = data
    items = "items{0} {{ totalCount hasNextPage endCursor documents {{ cursor meta {{ documentId }} }} }}"
    query = f'{{ {box}(id: "{b.hex()}") {{ fields {{ {items.format("")} }} }} }}'
    page = (await api.execute(query))["data"][box]["fields"]["items"]
    assert doc_ids(page) == [ids[i].hex() for i in (3, 0, 1, 3)] and page["totalCount"] == 4
    # Paged two at a time: each list position once, the duplicate included.
    seen: list[str] = []
    after = ""
    while True:
        argument = "(first: 2" + (f', after: "{after}"' if after else "") + ")"
        page = await api.execute(f'{{ {box}(id: "{b.hex()}") {{ fields {{ {items.format(argument)} }} }} }}')
        page = page["data"][box]["fields"]["items"]
        seen += doc_ids(page)
        if not page["hasNextPage"]:
            break
        after = page["endCursor"]
    assert seen == [ids[i].hex() for i in (3, 0, 1, 3)]
    ordered = await api.execute(
        f'{{ {box}(id: "{b.hex()}") {{ fields {{ {items.format("(orderBy: DOCUMENT_ID)")} }} }} }}'
    )
    assert doc_ids(ordered["data"][box]["fields"]["items"]) == sorted(ids[i].hex() for i in (3, 0, 1, 3))


async def test_pinned_relation_lists_keep_views_updated_since(data: Any) -> None:
    api, _, box, ids, b = data
    query = (
        f'{{ {box}(id: "{b.hex()}") {{ fields {{ pinned {{ documents {{ meta {{ viewId }} fields {{ n }} }} }} }} }} }}'
    )
    page = (await api.execute(query))["data"][box]["fields"]["pinned"]
    assert [(d["meta"]["viewId"], d["fields"]["n"]) for d in page["documents"]] == [
        (ids[0].hex(), 0),  # aquadoggo leaves this one out: it is no longer the current view
        (ids[1].hex(), 1),  # and this one
        (ids[3].hex(), 3),
    ]


async def test_empty_page_has_a_null_end_cursor(data: Any) -> None:
    api, item, *_ = data
    empty = await api.execute(
        f'{{ all_{item}(filter: {{title: {{eq: "none"}}}}) {{ totalCount endCursor hasNextPage }} }}'
    )
    assert empty == {"data": {f"all_{item}": {"totalCount": 0, "endCursor": None, "hasNextPage": False}}}


async def test_deleted_documents_are_never_listed(data: Any) -> None:
    api, item, _, ids, _ = data
    live = sorted(ids[i].hex() for i in (0, 1, 3))

    async def listed(meta: str) -> list[str]:
        result = await api.execute(f"{{ all_{item}{meta} {{ documents {{ meta {{ documentId }} }} }} }}")
        return sorted(doc_ids(result["data"][f"all_{item}"]))

    assert await listed("") == live
    assert await listed("(meta: {deleted: {eq: true}})") == []  # as aquadoggo
    assert await listed("(meta: {deleted: {eq: false}})") == live  # as aquadoggo
    assert await listed("(meta: {deleted: {notEq: true}})") == live  # aquadoggo: [] (reads notEq as eq)
    assert await listed("(meta: {edited: {eq: true}})") == sorted(ids[i].hex() for i in (0, 1))  # aquadoggo fails
    assert await listed("(meta: {edited: {eq: false}})") == [ids[3].hex()]
    assert await listed('(filter: {title: {contains: "_"}})') == [ids[0].hex()]  # aquadoggo: all three


async def test_argument_errors_read_as_aquadoggos(data: Any) -> None:
    api, item, *_ = data
    bad_id = await api.execute(f'{{ {item}(id: "zz") {{ meta {{ documentId }} }} }}')
    assert bad_id["errors"][0]["message"].startswith('Invalid value for argument "id", expected type "DocumentId"')
    assert "'zz'" in bad_id["errors"][0]["message"]
    bad_key = await api.execute('{ nextArgs(publicKey: "xyz") { logId } }')
    assert bad_key["errors"][0]["message"].startswith(
        'Invalid value for argument "publicKey", expected type "PublicKey"'
    )
    cursor = await api.execute(f'{{ all_{item}(after: "{"00" * 34}") {{ totalCount }} }}')
    assert cursor["errors"][0]["message"].startswith('Invalid value for argument "after", expected type "Cursor"')
