"""The secret-group schemas, as p2panda 0.8 application schemas signed by a fixed, public schema author.

As for the key-group schemas (see `keygroups.schemas`), the author's private key is public on purpose (the
blake3 hash of `AUTHOR_SEED`), signatures are deterministic and the schema ids are constants:
`python -m secret_group.schemas` rebuilds `schemas.bundle` byte for byte and a test checks it. Every node,
ours or a stock p2panda 0.8 one, can store and relay these documents; only members can read the payloads.

Public documents (what every node holds and serves):

- `mls_key_package` — `key_package: bytes` (a TLS-encoded MLS KeyPackage whose credential identity and
  signature key are the document author's key), `last_resort: bool`. Published ahead of time by each
  identity; single use: the joiner deletes the one a welcome consumed and publishes a fresh one. The
  last-resort package is reused when no other is left and is never deleted.
- `secret_group` — `owner: relation(key_group)` (who may read, send and commit: read, write and manage
  level), `mode: str` ("ratchet" or "history"). The MLS group id is the document id's 34 bytes.
  Permissioned: nodes that enforce key groups count it only from a writer of the owner group.
- `mls_commit` — one document per MLS commit, never updated: `group: relation(secret_group)`;
  `parent: str` (the id of the commit this one applies to, or the group id for the first); `epoch: int`
  (the epoch of the parent, i.e. the epoch the commit moves on from); `commit: bytes` (the MLS commit
  message); `welcome: bytes` (the MLS welcome, empty when nobody is added); `added: str` (space-separated
  public keys the welcome is for); `key_packages: str` (space-separated ids of the mls_key_package
  documents used); `key_group_tips: str` (the key group's tips the commit realises: its causal point);
  `handover: bytes` (sealed with a key exported from the new epoch, see `handover.py`: the group's name
  and, in history mode, its history secrets; empty when nobody is added).
- `mls_envelope` — one document per encrypted operation: `group: relation(secret_group)`; `epoch: int`
  (ratchet: the MLS epoch; history: the epoch of the history secret used); `ciphertext: bytes` (ratchet:
  an MLS application message; history: see `history.py`). The plaintext is itself a p2panda operation.

Inner schemas (operations that only ever travel inside envelopes, defined here so that their ids are
real schema ids):

- `chat_message` — `text: str`, `reply_to: str` (the id of the message replied to, or ""), `lamport: int`
  (a Lamport clock: one more than the highest the sender had seen; messages are shown in (lamport,
  author, id) order, which is causal).
- `chat_profile` — `name: str` (the author's display name), `lamport: int`; one per member and group,
  updated when the name changes (`/name` in `panda chat`).
- `chat_file` — `name: str`, `size: int` (bytes), `pieces: int`, `digest: str` (blake3 hex of the whole
  file), `lamport: int`; its bytes follow in `chat_file_piece` documents.
- `chat_file_piece` — `file: str` (the chat_file document id), `index: int` (from 0), `data: bytes`.
"""

from __future__ import annotations

from pathlib import Path

import blake3

from keygroups.schemas import KEY_GROUP
from p2panda.identity import KeyPair
from p2panda.schema import Schema
from p2panda.schema.signed import sign_schema

__all__ = [
    "AUTHOR",
    "AUTHOR_SEED",
    "BUNDLE_PATH",
    "CHAT_MESSAGE",
    "CHAT_MESSAGE_SCHEMA",
    "CHAT_PROFILE",
    "CHAT_PROFILE_SCHEMA",
    "CHAT_FILE",
    "CHAT_FILE_SCHEMA",
    "CHAT_FILE_PIECE",
    "CHAT_FILE_PIECE_SCHEMA",
    "CHAT_LEAVE",
    "CHAT_LEAVE_SCHEMA",
    "COMMIT",
    "COMMIT_SCHEMA",
    "ENVELOPE",
    "ENVELOPE_SCHEMA",
    "INNER_SCHEMAS",
    "KEY_PACKAGE",
    "KEY_PACKAGE_SCHEMA",
    "SECRET_GROUP",
    "SECRET_GROUP_SCHEMA",
    "build_bundle",
]

AUTHOR_SEED = b"p2panda secret groups schema author v1"
AUTHOR = KeyPair.from_private_key(blake3.blake3(AUTHOR_SEED).digest())
BUNDLE_PATH = Path(__file__).with_name("schemas.bundle")

# Constants, recomputed by the tests from the definitions below.
KEY_PACKAGE = "mls_key_package_0020216fde6aaa9b180f8c6e405d450cd74451e176a8b4d6c91f680a13d2eaa49794"
SECRET_GROUP = "secret_group_0020fd4a05912ba8b2a8a608b4996108e15c761acc68c91ebcba71398712f94c8ad4"
COMMIT = "mls_commit_002046e58d8a246343bfe2030d2e8f456a3af86e7f2a311150261a94b93b50be1ed1"
ENVELOPE = "mls_envelope_002051f371ddbc93c7ce0017ef1556db03584f7b4e414452555d8fc95df68c91b613"
CHAT_MESSAGE = "chat_message_00207e24404706dd4982f7592d8716758dd24ea5ef572357b91894dd76b3b3653b3c"
CHAT_PROFILE = "chat_profile_0020d6e9958ec4ab9dceaaf14be18de30a74ef42881e6ab5e0f9ebb2bbf90d15f1b1"
CHAT_FILE = "chat_file_0020865507c26b380252b28d2b44eeb580e2c28a954622515b42915134caaf3c8322"
CHAT_FILE_PIECE = "chat_file_piece_002083f2f4cbdc8308beb564baafa5b782d0deb62d0bcb6d9c7b5ec4f141d6eb8624"
CHAT_LEAVE = "chat_leave_00207c98ab289897e910265c78423d216f385c2391984158ef27f222e5b56681d6cf"


def build_bundle() -> tuple[list[tuple[bytes, bytes]], dict[str, Schema]]:
    """The bundle's (entry, operation) pairs and the schemas by name."""
    pairs: list[tuple[bytes, bytes]] = []
    schemas: dict[str, Schema] = {}

    def define(name: str, description: str, fields: dict[str, str]) -> Schema:
        new_pairs, schema = sign_schema(AUTHOR, name, description, fields, len(pairs))
        pairs.extend(new_pairs)
        schemas[name] = schema
        return schema

    define(
        "mls_key_package",
        "An MLS key package of its author, for being added to secret groups",
        {"key_package": "bytes", "last_resort": "bool"},
    )
    group = define(
        "secret_group",
        "A secret group: its owner key group decides who reads, sends and commits",
        {"owner": f"relation({KEY_GROUP})", "mode": "str"},
    )
    define(
        "mls_commit",
        "An MLS commit of a secret group, naming the commit it applies to",
        {
            "group": f"relation({group.id})",
            "parent": "str",
            "epoch": "int",
            "commit": "bytes",
            "welcome": "bytes",
            "added": "str",
            "key_packages": "str",
            "key_group_tips": "str",
            "handover": "bytes",
        },
    )
    define(
        "mls_envelope",
        "An encrypted p2panda operation of a secret group",
        {"group": f"relation({group.id})", "epoch": "int", "ciphertext": "bytes"},
    )
    define(
        "chat_message",
        "A chat message; travels only inside mls_envelope documents",
        {"text": "str", "reply_to": "str", "lamport": "int"},
    )
    define(
        "chat_profile",
        "A member's display name in a chat; travels only inside mls_envelope documents",
        {"name": "str", "lamport": "int"},
    )
    define(
        "chat_file",
        "A file sent to a chat, its bytes in chat_file_piece documents; travels only inside mls_envelope documents",
        {"name": "str", "size": "int", "pieces": "int", "digest": "str", "lamport": "int"},
    )
    define(
        "chat_file_piece",
        "One piece of a chat_file; travels only inside mls_envelope documents",
        {"file": "str", "index": "int", "data": "bytes"},
    )
    define(
        "chat_leave",
        "A member asks to be removed from a chat (a manager commits it); travels only inside mls_envelope documents",
        {"lamport": "int"},
    )
    return pairs, schemas


_, _SCHEMAS = build_bundle()
KEY_PACKAGE_SCHEMA = _SCHEMAS["mls_key_package"]
SECRET_GROUP_SCHEMA = _SCHEMAS["secret_group"]
COMMIT_SCHEMA = _SCHEMAS["mls_commit"]
ENVELOPE_SCHEMA = _SCHEMAS["mls_envelope"]
CHAT_MESSAGE_SCHEMA = _SCHEMAS["chat_message"]
CHAT_PROFILE_SCHEMA = _SCHEMAS["chat_profile"]
CHAT_FILE_SCHEMA = _SCHEMAS["chat_file"]
CHAT_FILE_PIECE_SCHEMA = _SCHEMAS["chat_file_piece"]
CHAT_LEAVE_SCHEMA = _SCHEMAS["chat_leave"]
INNER_SCHEMAS = {
    str(s.id): s
    for s in (CHAT_MESSAGE_SCHEMA, CHAT_PROFILE_SCHEMA, CHAT_FILE_SCHEMA, CHAT_FILE_PIECE_SCHEMA, CHAT_LEAVE_SCHEMA)
}


if __name__ == "__main__":
    from p2panda.node.bundle import encode_bundle

    bundle_pairs, by_name = build_bundle()
    BUNDLE_PATH.write_bytes(encode_bundle(bundle_pairs))
    print(f"wrote {len(bundle_pairs)} entries to {BUNDLE_PATH}")
    for schema_name, schema in by_name.items():
        print(f"{schema_name.upper()} = {str(schema.id)!r}")
