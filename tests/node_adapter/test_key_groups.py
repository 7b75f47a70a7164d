"""Key groups through the adapter (embedded node, a `panda node` process and, for `make interop`, a stock
aquadoggo): membership, levels, nesting, removal with cuts, strong removal, and which writes to
permissioned documents count.

Membership is resolved by the adapter from the membership documents, so it works on every node; which
writes count is the write policy of our node, which a stock aquadoggo does not apply (it shows every
write), so those tests are `not_on_plain_node`."""

from __future__ import annotations

from pathlib import Path

import pytest

from keygroups import Action, Level, Member
from keygroups.changes import change_fields
from keygroups.schemas import KEY_GROUP, KEY_GROUP_SCHEMA, MEMBERSHIP_SCHEMA
from node_adapter import EmbeddedNode, Node, PublishRefused
from p2panda import KeyPair
from p2panda.hash import Hash
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.operation.value import Relation
from p2panda.schema import FieldType, Schema

ALICE, BOB, CAROL, DAVE = (KeyPair.from_private_key(bytes([i]) * 32) for i in range(1, 5))


def key(kp: KeyPair) -> Member:
    return Member.key(kp.public_key.hex())


async def notes(node: Node) -> Schema:
    """A permissioned schema: its `owner` is a relation to a key group."""
    fields = {"owner": FieldType.parse(f"relation({KEY_GROUP})"), "text": FieldType.parse("str")}
    return await node.define_schema(ALICE, "note", "a note a key group may write", fields)


async def write(node: Node, schema: Schema, author: KeyPair, group: str, text: str) -> DocumentId:
    return await node.create(author, schema, {"owner": Relation(DocumentId.from_hex(group)), "text": text})


async def visible(node: Node, schema: Schema, doc: DocumentId) -> str | None:
    view = await node.document(schema, doc)
    return None if view is None or view.fields is None else str(view.fields["text"])


NO_POLICY = "aquadoggo applies no write policy (every write shows) and cannot report why one does not count"


async def test_membership_resolves_on_every_node(adapter: Node) -> None:
    group = await adapter.create_key_group(ALICE, "editors")
    assert await adapter.members(group) == {key(ALICE): Level.MANAGE}
    await adapter.set_member(ALICE, group, key(BOB), Level.WRITE)
    await adapter.set_member(ALICE, group, key(CAROL), Level.READ)
    assert await adapter.members(group) == {key(ALICE): Level.MANAGE, key(BOB): Level.WRITE, key(CAROL): Level.READ}
    assert (await adapter.key_group(group)).name == "editors"
    # Only managers change membership: the verb refuses, and a forged change document does not count (KG3).
    with pytest.raises(PublishRefused, match="does not manage"):
        await adapter.set_member(BOB, group, key(DAVE), Level.WRITE)
    state = (await adapter.key_group(group)).state
    await adapter.create(BOB, MEMBERSHIP_SCHEMA, change_fields(group, Action.ADD, key(DAVE), Level.MANAGE, state.tips))
    assert key(DAVE) not in await adapter.members(group)
    # Nesting: a member group's manager does not manage the outer group (N1); a group is not its own member.
    team = await adapter.create_key_group(ALICE, "team")
    await adapter.set_member(ALICE, team, key(DAVE), Level.MANAGE)
    await adapter.set_member(ALICE, group, Member.group(team), Level.WRITE)
    assert (await adapter.members(group))[Member.group(team)] == Level.WRITE
    with pytest.raises(PublishRefused, match="does not manage"):
        await adapter.set_member(DAVE, group, key(BOB), Level.WRITE)
    with pytest.raises(PublishRefused, match="member of itself"):
        await adapter.set_member(ALICE, team, Member.group(team), Level.WRITE)
    # Strong removal (KG4): Bob, a manager, adds Carol while Alice, not having seen it, removes Bob.
    await adapter.set_member(ALICE, team, key(BOB), Level.MANAGE)
    tips = (await adapter.key_group(team)).state.tips
    await adapter.create(BOB, MEMBERSHIP_SCHEMA, change_fields(team, Action.ADD, key(CAROL), Level.WRITE, tips))
    await adapter.create(ALICE, MEMBERSHIP_SCHEMA, change_fields(team, Action.REMOVE, key(BOB), None, tips))
    assert await adapter.members(team) == {key(ALICE): Level.MANAGE, key(DAVE): Level.MANAGE}


async def test_removal_records_how_far_the_node_holds_each_log(adapter: Node) -> None:
    """KG6 cuts from the node: our `logHeights`, or on a stock aquadoggo `nextArgs` per document of the
    permissioned schemas. Bob writes only permissioned documents here, where both give the same."""
    schema = await notes(adapter)
    group = await adapter.create_key_group(ALICE, "g")
    await adapter.set_member(ALICE, group, key(BOB), Level.WRITE)
    first = await write(adapter, schema, BOB, group, "one")  # log 0
    await adapter.update(BOB, schema, DocumentViewId([first]), {"text": "one, edited"})  # log 0, seq 2
    await write(adapter, schema, BOB, group, "two")  # log 1
    assert await adapter.log_heights(BOB.public_key) == {0: 2, 1: 1}
    await adapter.remove_member(ALICE, group, key(BOB))
    state = (await adapter.key_group(group)).state
    assert key(BOB) not in state.members and state.cuts[BOB.public_key.hex()] == {0: 2, 1: 1}
    # Lowered below write: the same cuts.
    await adapter.set_member(ALICE, group, key(CAROL), Level.WRITE)
    await write(adapter, schema, CAROL, group, "carol's")
    await adapter.set_member(ALICE, group, key(CAROL), Level.READ)
    assert (await adapter.key_group(group)).state.cuts[CAROL.public_key.hex()] == {0: 1}


@pytest.mark.not_on_plain_node(NO_POLICY)
async def test_members_levels_and_who_may_write(adapter: Node) -> None:
    schema = await notes(adapter)
    group = await adapter.create_key_group(ALICE, "editors")
    assert await adapter.members(group) == {key(ALICE): Level.MANAGE}
    await adapter.set_member(ALICE, group, key(BOB), Level.WRITE)
    await adapter.set_member(ALICE, group, key(CAROL), Level.READ)
    assert await adapter.members(group) == {key(ALICE): Level.MANAGE, key(BOB): Level.WRITE, key(CAROL): Level.READ}
    assert (await adapter.key_group(group)).name == "editors"

    by_bob = await write(adapter, schema, BOB, group, "from bob")
    by_carol = await write(adapter, schema, CAROL, group, "from carol")
    by_dave = await write(adapter, schema, DAVE, group, "from dave")
    assert await visible(adapter, schema, by_bob) == "from bob"
    assert await visible(adapter, schema, by_carol) is None
    assert await visible(adapter, schema, by_dave) is None
    assert await adapter.why_not_counted(by_bob) is None
    carol_reason = await adapter.why_not_counted(by_carol)
    assert carol_reason is not None and carol_reason.startswith("P3") and "level read" in carol_reason
    dave_reason = await adapter.why_not_counted(by_dave)
    assert dave_reason is not None and "is not a member" in dave_reason
    page = await adapter.query(schema)
    assert [d.id for d in page.documents] == [by_bob]

    # A manager edits Bob's note; Carol's edit does not count, and the view stays Alice's.
    view = (await adapter.document(schema, by_bob)).view_id  # type: ignore[union-attr]
    edited = await adapter.update(ALICE, schema, view, {"text": "edited by alice"})
    assert await visible(adapter, schema, by_bob) == "edited by alice"
    carol_edit = await adapter.update(CAROL, schema, edited, {"text": "edited by carol"})
    assert await visible(adapter, schema, by_bob) == "edited by alice"
    assert (await adapter.why_not_counted(carol_edit.ids[0])) is not None

    # Promoting Carol makes her earlier note count.
    await adapter.set_member(ALICE, group, key(CAROL), Level.WRITE)
    assert await visible(adapter, schema, by_carol) == "from carol"

    # Only managers change membership: the verb refuses, and a forged change document does not count.
    with pytest.raises(PublishRefused, match="does not manage"):
        await adapter.set_member(BOB, group, key(DAVE), Level.WRITE)
    state = (await adapter.key_group(group)).state
    fields = change_fields(group, Action.ADD, key(DAVE), Level.MANAGE, state.tips)
    forged = await adapter.create(BOB, MEMBERSHIP_SCHEMA, fields)
    reason = await adapter.why_not_counted(forged)
    assert reason is not None and reason.startswith("KG3")
    assert key(DAVE) not in await adapter.members(group)
    # P2: the owner of a document does not move to another group.
    other = await adapter.create_key_group(BOB, "bob's")
    view = (await adapter.document(schema, by_bob)).view_id  # type: ignore[union-attr]
    moved = await adapter.update(ALICE, schema, view, {"owner": Relation(DocumentId.from_hex(other))})
    moved_reason = await adapter.why_not_counted(moved.ids[0])
    assert moved_reason is not None and moved_reason.startswith("P2")
    # P4: renaming a group takes a manager.
    genesis = await adapter.document(KEY_GROUP_SCHEMA, DocumentId.from_hex(group))
    assert genesis is not None
    renamed = await adapter.update(BOB, KEY_GROUP_SCHEMA, genesis.view_id, {"name": "bob's now"})
    renamed_reason = await adapter.why_not_counted(renamed.ids[0])
    assert renamed_reason is not None and renamed_reason.startswith("P4")
    assert (await adapter.key_group(group)).name == "editors"


@pytest.mark.not_on_plain_node(NO_POLICY)
async def test_nested_groups_give_their_members_write(adapter: Node) -> None:
    schema = await notes(adapter)
    team = await adapter.create_key_group(ALICE, "team")
    outer = await adapter.create_key_group(ALICE, "outer")
    by_dave = await write(adapter, schema, DAVE, outer, "dave via team")
    assert await visible(adapter, schema, by_dave) is None
    await adapter.set_member(ALICE, team, key(DAVE), Level.MANAGE)
    await adapter.set_member(ALICE, outer, Member.group(team), Level.WRITE)
    assert await visible(adapter, schema, by_dave) == "dave via team"  # N1: manage in team -> write here
    # A nested member does not manage the outer group (N1).
    with pytest.raises(PublishRefused, match="does not manage"):
        await adapter.set_member(DAVE, outer, key(BOB), Level.WRITE)
    # Nested as read only: team members cannot write in outer.
    await adapter.set_member(ALICE, outer, Member.group(team), Level.READ)
    assert await visible(adapter, schema, by_dave) is None
    # N3: a cycle (team contains outer, which contains team) is refused by the verb and not followed.
    with pytest.raises(PublishRefused, match="member of itself"):
        await adapter.set_member(ALICE, team, Member.group(team), Level.WRITE)
    await adapter.set_member(ALICE, team, Member.group(outer), Level.WRITE)
    await adapter.set_member(ALICE, outer, Member.group(team), Level.WRITE)
    assert await visible(adapter, schema, by_dave) == "dave via team"


@pytest.mark.not_on_plain_node(NO_POLICY)
async def test_removal_keeps_writes_up_to_the_cut(adapter: Node) -> None:
    schema = await notes(adapter)
    group = await adapter.create_key_group(ALICE, "g")
    await adapter.set_member(ALICE, group, key(BOB), Level.WRITE)
    before = await write(adapter, schema, BOB, group, "before removal")
    await adapter.remove_member(ALICE, group, key(BOB))
    state = (await adapter.key_group(group)).state
    assert key(BOB) not in state.members and state.cuts[BOB.public_key.hex()]
    after = await write(adapter, schema, BOB, group, "after removal")
    assert await visible(adapter, schema, before) == "before removal"
    assert await visible(adapter, schema, after) is None
    reason = await adapter.why_not_counted(after)
    assert reason is not None and reason.startswith("P3") and "not a member" in reason


@pytest.mark.not_on_plain_node(NO_POLICY)
async def test_strong_removal_drops_the_removed_managers_concurrent_changes(adapter: Node) -> None:
    schema = await notes(adapter)
    group = await adapter.create_key_group(ALICE, "g")
    await adapter.set_member(ALICE, group, key(BOB), Level.MANAGE)
    tips = (await adapter.key_group(group)).state.tips
    # Bob adds Carol while Alice, not having seen it, removes Bob: both name the same tips.
    bob_adds = await adapter.create(
        BOB, MEMBERSHIP_SCHEMA, change_fields(group, Action.ADD, key(CAROL), Level.WRITE, tips)
    )
    alice_removes = await adapter.create(
        ALICE, MEMBERSHIP_SCHEMA, change_fields(group, Action.REMOVE, key(BOB), None, tips)
    )
    by_carol = await write(adapter, schema, CAROL, group, "carol")
    assert await adapter.members(group) == {key(ALICE): Level.MANAGE}
    reason = await adapter.why_not_counted(bob_adds)
    assert reason is not None and reason.startswith("KG4")
    assert await adapter.why_not_counted(alice_removes) is None
    assert await visible(adapter, schema, by_carol) is None


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    async with EmbeddedNode(tmp_path) as node:
        schema = await notes(node)
        group = await node.create_key_group(ALICE, "g")
        await node.set_member(ALICE, group, key(BOB), Level.WRITE)
        by_bob = await write(node, schema, BOB, group, "kept")
        by_carol = await write(node, schema, CAROL, group, "refused")
    async with EmbeddedNode(tmp_path) as node:
        assert await visible(node, schema, by_bob) == "kept"
        assert await visible(node, schema, by_carol) is None
        # The cache is empty after the restart: the first change rebuilds it from the store.
        await node.set_member(ALICE, group, key(CAROL), Level.WRITE)
        assert await visible(node, schema, by_carol) == "refused"
        assert await node.why_not_counted(Hash.from_hex(by_carol.hex())) is None
        older = await node.document_at(schema, DocumentViewId([by_carol]))
        assert older is not None


async def test_batch_ingest_of_a_key_group_history_equals_publishing_it(tmp_path: Path) -> None:
    """Replication's path (`Node.ingest`, one transaction) under the key-group policy: the same counted
    documents and the same database as publishing the same entries one by one."""
    from sqlalchemy import select, text

    from p2panda.node import tables
    from tests.p2panda.node.helpers import fingerprint

    async with EmbeddedNode(tmp_path / "source") as source:
        schema = await notes(source)
        group = await source.create_key_group(ALICE, "editors")
        await source.set_member(ALICE, group, key(BOB), Level.WRITE)
        await source.set_member(ALICE, group, key(CAROL), Level.READ)
        by_bob = await write(source, schema, BOB, group, "from bob")
        by_carol = await write(source, schema, CAROL, group, "from carol")
        await source.set_member(ALICE, group, key(CAROL), Level.WRITE)  # her earlier note now counts
        await source.remove_member(ALICE, group, key(BOB))
        late = await write(source, schema, BOB, group, "after removal")
        order = select(tables.entries.c.raw, tables.entries.c.payload).order_by(text("rowid"))
        pairs = [(r.raw, r.payload) for r in await source.node.db.read(lambda conn: conn.execute(order).all())]
    async with EmbeddedNode(tmp_path / "one") as one, EmbeddedNode(tmp_path / "batch") as batch:
        for entry, payload in pairs:
            try:
                await one.node.publish(entry, payload)
            except Exception as exc:  # the bundle's entries are there already
                assert type(exc).__name__ == "AlreadyStored"
        outcomes = await batch.node.ingest(pairs)
        assert {type(o).__name__ for o in outcomes} <= {"Published", "AlreadyStored"}
        assert await fingerprint(batch.node) == await fingerprint(one.node)
        assert await visible(batch, schema, by_bob) == "from bob"
        assert await visible(batch, schema, by_carol) == "from carol"
        assert await visible(batch, schema, late) is None
