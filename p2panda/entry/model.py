"""The validated entry value."""

from __future__ import annotations

from dataclasses import dataclass

from p2panda.hash import Hash
from p2panda.identity import PublicKey

__all__ = ["Entry"]


@dataclass(frozen=True, slots=True)
class Entry:
    """A decoded Bamboo entry whose structure and signature were checked (E1–E12).

    `raw` holds the exact bytes received; `hash` is the hash of those bytes (ids are never hashes of a
    re-encoding).
    """

    public_key: PublicKey
    log_id: int
    seq_num: int
    skiplink: Hash | None
    backlink: Hash | None
    payload_size: int
    payload_hash: Hash
    signature: bytes
    hash: Hash
    raw: bytes

    def __repr__(self) -> str:
        return (
            f"Entry(public_key={self.public_key.hex()!r}, log_id={self.log_id}, seq_num={self.seq_num}, "
            f"hash={self.hash.hex()!r})"
        )
