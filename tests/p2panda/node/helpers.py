"""Building signed entries for node tests, and a fingerprint of a node's whole database."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Connection, select

from p2panda import Hash, KeyPair
from p2panda.entry import lipmaa
from p2panda.entry.encode import unsigned_entry_bytes
from p2panda.node import Node
from p2panda.node.tables import metadata
from p2panda.operation import Operation, encode_operation


def raw_entry(
    kp: KeyPair,
    log_id: int,
    seq_num: int,
    payload: bytes,
    backlink: Hash | None = None,
    skiplink: Hash | None = None,
) -> bytes:
    """Sign any link combination, even ones `sign_entry` refuses (for bad-input tests)."""
    unsigned = unsigned_entry_bytes(
        kp.public_key.to_bytes(), log_id, seq_num, len(payload), Hash.of(payload), backlink, skiplink
    )
    return unsigned + kp.sign(unsigned)


async def publish_operation(node: Node, kp: KeyPair, operation: Operation, view_id: Any = None) -> Hash:
    """Publish like a client: ask for next args, sign, publish. Returns the operation id."""
    args = await node.next_args(kp.public_key, view_id)
    payload = encode_operation(operation)
    raw = raw_entry(kp, args.log_id, args.seq_num, payload, args.backlink, args.skiplink)
    published = await node.publish(raw, payload)
    return published.entry.hash


async def fingerprint(node: Node) -> str:
    def read(conn: Connection) -> str:
        digest = hashlib.sha256()
        for table in metadata.sorted_tables:
            rows = conn.execute(select(table)).all()
            for row in sorted(repr(tuple(r)) for r in rows):
                digest.update(f"{table.name}:{row}\n".encode())
        return digest.hexdigest()

    return await node.db.read(read)


def skiplink_for(seq: int, hashes: dict[int, Hash]) -> Hash | None:
    target = lipmaa(seq)
    return hashes[target] if seq > 1 and target != seq - 1 else None
