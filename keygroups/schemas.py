"""The key group schemas, as p2panda 0.8 application schemas signed by a fixed, public schema-author key.

Ed25519 signatures are deterministic, so the entries of the bundle, and with them the schema ids, are
constants: `python -m keygroups.schemas` rebuilds `schemas.bundle` byte for byte, and a test checks that
the shipped file and `KEY_GROUP` / `MEMBERSHIP` are what the definitions give.

The schema author's private key is public on purpose (it is the blake3 hash of `AUTHOR_SEED`): it owns no
data, and a schema id pins the exact definition views, so publishing more with it cannot change these
schemas. Each field definition and schema definition is its own document in its own log (log ids 0-7).

Documents (all fields are required in p2panda 0.8, so "empty" is the empty string):

- `key_group` — `name: str`. Its CREATE is the group's genesis; its author is the first manager; the
  group id is its document id.
- `key_group_membership` — one document per membership change, never updated:
  `group: relation(key_group)`; `action: str` ("add" sets a member's level, "remove");
  `member: str` ("key:<public key hex>" or "group:<key group document id>");
  `level: str` ("pull", "read", "write", "manage"; "" for remove);
  `previous: str` (space-separated ids of the changes this one follows: membership document ids, or the
  group id for the first change); `cuts: str` (space-separated "<log id>:<seq num>", see KG6).

A schema is **permissioned** when it has a field `owner` of type `relation(<KEY_GROUP>)`: the key group
named by a document's CREATE decides who may write it (see `keygroups.policy`).
"""

from __future__ import annotations

from pathlib import Path

import blake3

from p2panda.identity import KeyPair
from p2panda.schema import Schema
from p2panda.schema.signed import sign_schema

__all__ = [
    "AUTHOR",
    "AUTHOR_SEED",
    "BUNDLE_PATH",
    "KEY_GROUP",
    "KEY_GROUP_SCHEMA",
    "MEMBERSHIP",
    "MEMBERSHIP_SCHEMA",
    "OWNER_FIELD",
    "build_bundle",
    "is_permissioned",
]

AUTHOR_SEED = b"p2panda key groups schema author v1"
AUTHOR = KeyPair.from_private_key(blake3.blake3(AUTHOR_SEED).digest())
BUNDLE_PATH = Path(__file__).with_name("schemas.bundle")
OWNER_FIELD = "owner"

# Constants, recomputed by the tests from the definitions below.
KEY_GROUP = "key_group_0020ff7a643606846f5e8e97e799036cdf75fedd8935a38b173d03c7292a106d9bb3"
MEMBERSHIP = "key_group_membership_00202c222e763c81e598b12224e4ac57e4dd54b009f9f359513056eab48a381b12b8"

_KEY_GROUP_FIELDS = {"name": "str"}
_KEY_GROUP_DESCRIPTION = "A key group; its creator manages it, key_group_membership documents change it"
_MEMBERSHIP_DESCRIPTION = "A change of a key group's membership, naming the changes it follows"


def _membership_fields(key_group: str) -> dict[str, str]:
    return {
        "group": f"relation({key_group})",
        "action": "str",
        "member": "str",
        "level": "str",
        "previous": "str",
        "cuts": "str",
    }


def build_bundle() -> tuple[list[tuple[bytes, bytes]], Schema, Schema]:
    """The bundle's (entry, operation) pairs, the key group schema and the membership schema."""
    group_pairs, key_group = sign_schema(AUTHOR, "key_group", _KEY_GROUP_DESCRIPTION, _KEY_GROUP_FIELDS, 0)
    membership_pairs, membership = sign_schema(
        AUTHOR, "key_group_membership", _MEMBERSHIP_DESCRIPTION, _membership_fields(str(key_group.id)), len(group_pairs)
    )
    return group_pairs + membership_pairs, key_group, membership


_, KEY_GROUP_SCHEMA, MEMBERSHIP_SCHEMA = build_bundle()


def is_permissioned(schema: Schema) -> bool:
    """A schema whose `owner` field is a relation to a key group."""
    owner = schema.fields.get(OWNER_FIELD)
    return owner is not None and str(owner) == f"relation({KEY_GROUP})"


if __name__ == "__main__":
    from p2panda.node.bundle import encode_bundle

    pairs, key_group_schema, membership_schema = build_bundle()
    BUNDLE_PATH.write_bytes(encode_bundle(pairs))
    print(f"wrote {len(pairs)} entries to {BUNDLE_PATH}")
    print(f"KEY_GROUP = {str(key_group_schema.id)!r}")
    print(f"MEMBERSHIP = {str(membership_schema.id)!r}")
