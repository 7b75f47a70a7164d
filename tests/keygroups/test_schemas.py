"""The key-group schemas' bundle: the shipped file is what the definitions and the fixed author key give,
its schema ids are the documented constants, and every entry passes p2panda 0.8 validation."""

from __future__ import annotations

from pathlib import Path

from keygroups.schemas import AUTHOR, AUTHOR_SEED, BUNDLE_PATH, KEY_GROUP, MEMBERSHIP, build_bundle
from p2panda.entry import decode_entry, verify_payload
from p2panda.node import Node, NodeConfig
from p2panda.node.bundle import encode_bundle, read_bundle
from p2panda.operation import decode_operation
from p2panda.schema import SYSTEM_SCHEMAS, validate_operation

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_shipped_bundle_is_rebuilt_byte_for_byte() -> None:
    pairs, key_group, membership = build_bundle()
    assert BUNDLE_PATH.read_bytes() == encode_bundle(pairs)
    assert str(key_group.id) == KEY_GROUP and str(membership.id) == MEMBERSHIP
    assert f"relation({KEY_GROUP})" == str(membership.fields["group"])


def test_schema_ids_and_author_are_documented_in_the_readme() -> None:
    text = README.read_text()
    assert KEY_GROUP in text and MEMBERSHIP in text and AUTHOR.public_key.hex() in text
    assert AUTHOR_SEED.decode() in text


def test_every_entry_passes_core_validation() -> None:
    for entry_bytes, payload in read_bundle(BUNDLE_PATH):
        entry = decode_entry(entry_bytes)  # E1-E12, signature included
        verify_payload(entry, payload)  # E13
        assert entry.public_key == AUTHOR.public_key and entry.seq_num == 1
        operation = decode_operation(payload)  # OP1-OP10
        validate_operation(operation, SYSTEM_SCHEMAS[operation.schema_id])  # S1-S4


async def test_a_plain_node_ingests_the_bundle_and_knows_the_schemas(tmp_path: Path) -> None:
    async with Node(NodeConfig(tmp_path, bundles=(BUNDLE_PATH,))) as node:
        assert node.schema(KEY_GROUP) is not None and node.schema(MEMBERSHIP) is not None
    async with Node(NodeConfig(tmp_path, bundles=(BUNDLE_PATH,))) as node:  # a second start adds nothing
        assert await node.ingest_bundle(read_bundle(BUNDLE_PATH)) == 0
