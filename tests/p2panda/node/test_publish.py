"""The embedded node on SQLite and PostgreSQL: node_flow, persistence, the publish checks, forks, crashes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection

from p2panda import Hash, KeyPair, P2PandaError, PublicKey
from p2panda.entry import EntryError, EntryTooLarge, IdenticalLinks, InvalidSignature, PayloadMismatch
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.node import (
    DocumentDeleted,
    ForkDetected,
    LinkMismatch,
    LogIdMismatch,
    Node,
    NodeConfig,
    OutOfRange,
    PreviousFromOtherDocument,
    PreviousNotFound,
    SchemaNotFound,
    SeqNumMismatch,
)
from p2panda.node.publish import publish as run_pipeline
from p2panda.node.store import Store
from p2panda.operation import InvalidSchemaId, MalformedCbor, NonCanonicalEncoding, Operation, encode_operation
from p2panda.operation.cbor import encode_canonical
from p2panda.schema import MissingField, SchemaId, UnknownField, WrongFieldType

from .helpers import fingerprint, publish_operation, raw_entry

MESSAGE = SchemaId.parse("message_0020d4f2294b7e953e70dd476b5de39d1679ff06a4936bca3ef6fb227e83a126a767")
FIELD_DEF = SchemaId.parse("schema_field_definition_v1")


async def publish_node_flow(node: Node, vectors: dict[str, Any]) -> list[Any]:
    results = []
    for step in vectors["node_flow"]["steps"]:
        results.append(await node.publish(bytes.fromhex(step["entry"]), bytes.fromhex(step["operation"])))
    return results


async def test_node_flow(node: Node, vectors: dict[str, Any]) -> None:
    flow = vectors["node_flow"]
    author = PublicKey.from_hex(flow["graphql_after_step_3"]["response"]["data"]["doc"]["meta"]["owner"])
    fresh = await node.next_args(author)
    assert (fresh.log_id, fresh.seq_num, fresh.backlink, fresh.skiplink) == (0, 1, None, None)
    steps = flow["steps"]
    first = await node.publish(bytes.fromhex(steps[0]["entry"]), bytes.fromhex(steps[0]["operation"]))
    assert first.entry.hash.hex() == steps[0]["entry_hash"]
    expected = flow["next_args_after_step_1"]
    args = await node.next_args(author, DocumentViewId.from_str(steps[0]["entry_hash"]))
    assert (str(args.log_id), str(args.seq_num), args.backlink.hex() if args.backlink else None, args.skiplink) == (
        expected["logId"],
        expected["seqNum"],
        expected["backlink"],
        expected["skiplink"],
    )
    for step in steps[1:3]:
        await node.publish(bytes.fromhex(step["entry"]), bytes.fromhex(step["operation"]))
    assert node.schema(str(MESSAGE)) is not None
    meta = flow["graphql_after_step_3"]["response"]["data"]["doc"]
    doc = await node.document(DocumentId.from_hex(meta["meta"]["documentId"]))
    assert doc is not None
    assert (doc.id.hex(), str(doc.view_id), doc.owner.hex()) == (
        meta["meta"]["documentId"],
        meta["meta"]["viewId"],
        meta["meta"]["owner"],
    )
    assert dict(doc.fields or {}) == meta["fields"]
    await node.publish(bytes.fromhex(steps[3]["entry"]), bytes.fromhex(steps[3]["operation"]))
    updated = await node.document(doc.id)
    assert updated is not None and dict(updated.fields or {}) == {"message": "Hello again"} and updated.is_edited
    older = await node.document_at(DocumentViewId.from_str(meta["meta"]["viewId"]))
    assert older is not None and dict(older.fields or {}) == meta["fields"]


async def test_data_survives_restart(database_url: str, tmp_path: Path, vectors: dict[str, Any]) -> None:
    async with Node(NodeConfig(tmp_path, database_url)) as node:
        await publish_node_flow(node, vectors)
        before = await fingerprint(node)
    async with Node(NodeConfig(tmp_path, database_url)) as node:
        assert await fingerprint(node) == before
        assert node.schema(str(MESSAGE)) is not None
        docs = await node.documents(str(MESSAGE))
        assert [dict(d.fields or {}) for d in docs] == [{"message": "Hello again"}]


async def test_default_database_is_a_file_in_the_data_dir(tmp_path: Path, vectors: dict[str, Any]) -> None:
    async with Node(NodeConfig(tmp_path / "data")) as node:
        await publish_node_flow(node, vectors)
    assert (tmp_path / "data" / "node.sqlite3").stat().st_size > 0


async def test_interrupted_materialisation_is_finished_at_start(
    database_url: str, tmp_path: Path, vectors: dict[str, Any]
) -> None:
    steps = vectors["node_flow"]["steps"]
    async with Node(NodeConfig(tmp_path, database_url)) as node:
        for step in steps[:3]:
            await node.publish(bytes.fromhex(step["entry"]), bytes.fromhex(step["operation"]))

        # The last entry is stored but the process "dies" before materialising it.
        # A deferred ingest stores the operation and leaves a materialiser task, then the process "dies".
        def store_only(conn: Connection) -> None:
            published = run_pipeline(
                Store(conn), node.registry, bytes.fromhex(steps[3]["entry"]), bytes.fromhex(steps[3]["operation"])
            )
            Store(conn).add_task(published.document_id.hex())

        await node.db.write(store_only)
        stale = await node.document(DocumentId.from_hex(steps[2]["entry_hash"]))
        assert stale is not None
    async with Node(NodeConfig(tmp_path, database_url)) as node:
        assert await node.db.read(lambda conn: Store(conn).tasks()) == []
        docs = await node.documents(str(MESSAGE))
        assert str(docs[0].view_id) == steps[3]["entry_hash"]


KP = KeyPair.from_private_key(bytes.fromhex("eb852fefa703901e42f17cdc2aa507947f392a72101b2c1a6d30023af14f75e2"))
OTHER = KeyPair.from_private_key(bytes(range(32)))
THIRD = KeyPair.from_private_key(bytes(range(1, 33)))


@pytest.fixture
async def seeded(node: Node, vectors: dict[str, Any]) -> dict[str, Any]:
    """node_flow published, two more updates (log 2 holds seq 1..4) and a deleted second document."""
    steps = vectors["node_flow"]["steps"]
    await publish_node_flow(node, vectors)
    doc = DocumentId.from_hex(steps[2]["entry_hash"])
    tip = Hash.from_hex(steps[3]["entry_hash"])
    for text in ("three", "four"):
        tip = await publish_operation(
            node, KP, Operation.update(MESSAGE, DocumentViewId([tip]), {"message": text}), DocumentViewId([tip])
        )
    doomed = await publish_operation(node, KP, Operation.create(MESSAGE, {"message": "bye"}))
    gone = await publish_operation(
        node, KP, Operation.delete(MESSAGE, DocumentViewId([doomed])), DocumentViewId([doomed])
    )
    third = [await publish_operation(node, THIRD, Operation.create(MESSAGE, {"message": "3"}))]
    for text in ("3.2", "3.3"):
        view = DocumentViewId([third[-1]])
        third.append(await publish_operation(node, THIRD, Operation.update(MESSAGE, view, {"message": text}), view))

    def read(conn: Connection) -> dict[int, Hash]:
        store = Store(conn)
        return {seq: Hash.from_hex(e.hash) for seq in range(1, 5) if (e := store.entry_at(KP.public_key.hex(), 2, seq))}

    hashes = await node.db.read(read)
    return {"doc": doc, "tip": tip, "log2": hashes, "deleted": gone, "deleted_doc": doomed, "third": third}


def bad_inputs(s: dict[str, Any]) -> list[tuple[str, bytes, bytes, type[P2PandaError]]]:
    tip, log2 = s["tip"], s["log2"]
    upd = encode_operation(Operation.update(MESSAGE, DocumentViewId([tip]), {"message": "x"}))
    create = encode_operation(Operation.create(MESSAGE, {"message": "new"}))
    third_upd = encode_operation(Operation.update(MESSAGE, DocumentViewId([s["third"][2]]), {"message": "3.4"}))
    good = raw_entry(KP, 2, 5, upd, log2[4], None)
    flipped = good[:-1] + bytes([good[-1] ^ 1])
    return [
        ("garbage entry", b"\x00\x01\x02", upd, EntryError),
        ("empty entry", b"", upd, EntryError),
        ("oversized entry", good + b"\x00" * 200, upd, EntryTooLarge),
        ("bad signature", flipped, upd, InvalidSignature),
        ("wrong backlink", raw_entry(KP, 2, 5, upd, Hash.of(b"nope")), upd, LinkMismatch),
        ("wrong skiplink", raw_entry(THIRD, 0, 4, third_upd, s["third"][2], Hash.of(b"nope")), third_upd, LinkMismatch),
        ("identical links", raw_entry(KP, 2, 8, upd, log2[4], log2[4]), upd, IdenticalLinks),
        ("seq num gap", raw_entry(KP, 2, 6, upd, log2[4]), upd, SeqNumMismatch),
        ("seq num of a new log not 1", raw_entry(KP, 9, 2, create, Hash.of(b"x")), create, SeqNumMismatch),
        ("payload hash mismatch", good, upd[:-1] + b"y", PayloadMismatch),
        ("payload size mismatch", good, upd + b"\x00", PayloadMismatch),
        (
            "unknown schema",
            *_signed(KP, 5, Operation.create(SchemaId.parse("venue_" + Hash.of(b"v").hex()), {"a": 1})),
            SchemaNotFound,
        ),
        ("malformed schema id", *_signed_raw(KP, 5, encode_canonical([1, 0, "venue_0020", {"a": 1}])), InvalidSchemaId),
        ("malformed cbor", *_signed_raw(KP, 5, b"\xff\x00"), MalformedCbor),
        ("non-canonical cbor", *_signed_raw(KP, 5, b"\x84\x18\x01" + create[2:]), NonCanonicalEncoding),
        ("missing field", *_signed(KP, 5, Operation.create(FIELD_DEF, {"name": "x"})), MissingField),
        ("extra field", *_signed(KP, 5, Operation.create(MESSAGE, {"message": "x", "extra": 1})), UnknownField),
        ("wrongly typed field", *_signed(KP, 5, Operation.create(MESSAGE, {"message": 5})), WrongFieldType),
        (
            "previous from another document",
            *_signed(OTHER, 0, Operation.update(MESSAGE, DocumentViewId([tip, s["deleted_doc"]]), {})),
            PreviousFromOtherDocument,
        ),
        (
            "previous of another schema",
            *_signed(OTHER, 0, Operation.update(FIELD_DEF, DocumentViewId([tip]), {})),
            PreviousFromOtherDocument,
        ),
        (
            "previous not stored",
            *_signed(OTHER, 0, Operation.update(MESSAGE, DocumentViewId([Hash.of(b"?")]), {})),
            PreviousNotFound,
        ),
        (
            "update of a deleted document",
            *_signed(OTHER, 0, Operation.update(MESSAGE, DocumentViewId([s["deleted"]]), {"message": "x"})),
            DocumentDeleted,
        ),
        ("create continuing a log", raw_entry(KP, 2, 5, create, log2[4]), create, LogIdMismatch),
        (
            "update outside the author's log for the document",
            *_signed(KP, 7, Operation.update(MESSAGE, DocumentViewId([tip]), {})),
            LogIdMismatch,
        ),
        ("log id out of storable range", *_signed(KP, 2**63, Operation.create(MESSAGE, {"message": "x"})), OutOfRange),
        ("entry already stored", s["stored_raw"], s["stored_payload"], SeqNumMismatch),
    ]


def _signed(kp: KeyPair, log_id: int, op: Operation) -> tuple[bytes, bytes]:
    payload = encode_operation(op)
    return raw_entry(kp, log_id, 1, payload), payload


def _signed_raw(kp: KeyPair, log_id: int, payload: bytes) -> tuple[bytes, bytes]:
    return raw_entry(kp, log_id, 1, payload), payload


async def test_bad_input_is_refused_and_changes_nothing(node: Node, seeded: dict[str, Any]) -> None:
    stored = await node.db.read(lambda conn: Store(conn).entry_at(KP.public_key.hex(), 2, 2))
    assert stored is not None
    seeded["stored_raw"], seeded["stored_payload"] = stored.raw, stored.payload
    cases = bad_inputs(seeded)
    assert len(cases) >= 20
    before = await fingerprint(node)
    for name, entry, operation, error in cases:
        with pytest.raises(error) as caught:
            await node.publish(entry, operation)
        assert str(caught.value), name
        assert await fingerprint(node) == before, f"{name} changed the store"


async def test_fork_keeps_the_first_entry_and_records_proof(node: Node, seeded: dict[str, Any]) -> None:
    before = await fingerprint(node)
    log2 = seeded["log2"]
    other = encode_operation(Operation.update(MESSAGE, DocumentViewId([log2[2]]), {"message": "fork"}))
    forked = raw_entry(KP, 2, 3, other, log2[2])
    with pytest.raises(ForkDetected, match="fork"):
        await node.publish(forked, other)
    proofs = await node.fork_proofs()
    assert len(proofs) == 1 and proofs[0][:4] == (KP.public_key.hex(), 2, 3, log2[3].hex()) and proofs[0][4] == forked
    kept = await node.db.read(lambda conn: Store(conn).entry_at(KP.public_key.hex(), 2, 3))
    assert kept is not None and kept.hash == log2[3].hex()
    # Only the proof was added: removing it gives the old fingerprint back.
    from sqlalchemy import delete

    from p2panda.node.tables import fork_proofs

    await node.db.write(lambda conn: conn.execute(delete(fork_proofs)))
    assert await fingerprint(node) == before


async def test_other_authors_update_in_their_own_new_log(node: Node, seeded: dict[str, Any]) -> None:
    tip = seeded["tip"]
    args = await node.next_args(OTHER.public_key, DocumentViewId([tip]))
    assert (args.log_id, args.seq_num) == (0, 1)
    op_id = await publish_operation(
        node, OTHER, Operation.update(MESSAGE, DocumentViewId([tip]), {"message": "hi"}), DocumentViewId([tip])
    )
    doc = await node.document(seeded["doc"])
    assert doc is not None and doc.fields == {"message": "hi"} and doc.view_id == DocumentViewId([op_id])
    again = await node.next_args(OTHER.public_key, DocumentViewId([op_id]))
    assert (again.log_id, again.seq_num, again.backlink) == (0, 2, op_id)


async def test_next_args_refuses_deleted_documents(node: Node, seeded: dict[str, Any]) -> None:
    with pytest.raises(DocumentDeleted):
        await node.next_args(KP.public_key, DocumentViewId([seeded["deleted"]]))
    assert await node.document(DocumentId(seeded["deleted_doc"].to_bytes())) is not None
    third_doc = DocumentId(seeded["third"][0].to_bytes())
    assert sorted(d.id for d in await node.documents(str(MESSAGE))) == sorted([seeded["doc"], third_doc])
    assert len(await node.documents(str(MESSAGE), include_deleted=True)) == 3
