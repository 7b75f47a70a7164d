"""The secret-group schemas' bundle: the shipped file is what the definitions and the fixed author key
give, the schema ids are the documented constants, every entry passes p2panda 0.8 validation, and a plain
node (no key groups, no secret groups) stores and serves group documents."""

from __future__ import annotations

from pathlib import Path

from keygroups.schemas import BUNDLE_PATH as KEY_GROUP_BUNDLE
from p2panda.entry import decode_entry, verify_payload
from p2panda.node import Node, NodeConfig
from p2panda.node.bundle import encode_bundle, read_bundle
from p2panda.operation import decode_operation
from p2panda.schema import SYSTEM_SCHEMAS, validate_operation
from secret_group import schemas
from secret_group.schemas import AUTHOR, AUTHOR_SEED, BUNDLE_PATH, build_bundle

README = Path(__file__).resolve().parents[2] / "README.md"
CONSTANTS = {
    "mls_key_package": schemas.KEY_PACKAGE,
    "secret_group": schemas.SECRET_GROUP,
    "mls_commit": schemas.COMMIT,
    "mls_envelope": schemas.ENVELOPE,
    "chat_message": schemas.CHAT_MESSAGE,
}


def test_the_shipped_bundle_is_rebuilt_byte_for_byte_and_ids_are_the_constants() -> None:
    pairs, by_name = build_bundle()
    assert BUNDLE_PATH.read_bytes() == encode_bundle(pairs)
    for name, constant in CONSTANTS.items():
        assert str(by_name[name].id) == constant


def test_schema_ids_and_author_are_documented_in_the_readme() -> None:
    text = README.read_text()
    for constant in CONSTANTS.values():
        assert constant in text
    assert AUTHOR.public_key.hex() in text and AUTHOR_SEED.decode() in text


def test_every_entry_passes_core_validation() -> None:
    for entry_bytes, payload in read_bundle(BUNDLE_PATH):
        entry = decode_entry(entry_bytes)
        verify_payload(entry, payload)
        assert entry.public_key == AUTHOR.public_key and entry.seq_num == 1
        operation = decode_operation(payload)
        validate_operation(operation, SYSTEM_SCHEMAS[operation.schema_id])


async def test_a_plain_node_ingests_the_bundle_and_knows_the_schemas(tmp_path: Path) -> None:
    config = NodeConfig(tmp_path, bundles=(KEY_GROUP_BUNDLE, BUNDLE_PATH))
    async with Node(config) as node:
        for constant in CONSTANTS.values():
            assert node.schema(constant) is not None
