"""Encoding and signing of Bamboo entries (ed25519-yasmf variant)."""

from __future__ import annotations

from p2panda.entry.errors import LinkArgumentError
from p2panda.entry.lipmaa import is_skiplink_required
from p2panda.hash import Hash
from p2panda.identity import KeyPair
from p2panda.varu64 import MAX_U64, encode_varu64

__all__ = ["sign_entry", "TAG"]

TAG = b"\x00"


def check_link_arguments(seq_num: int, backlink: Hash | None, skiplink: Hash | None) -> None:
    """Refuse links the sequence number does not allow; demand the ones it needs."""
    if not 1 <= seq_num <= MAX_U64:
        raise LinkArgumentError(f"seq num must be between 1 and 2^64-1, got {seq_num}")
    if seq_num == 1:
        if backlink is not None or skiplink is not None:
            raise LinkArgumentError("seq num 1 starts a log and takes neither backlink nor skiplink")
        return
    if backlink is None:
        raise LinkArgumentError(f"backlink is required at seq num {seq_num}")
    if is_skiplink_required(seq_num):
        if skiplink is None:
            raise LinkArgumentError(f"skiplink is required at seq num {seq_num}")
        if skiplink == backlink:
            raise LinkArgumentError(f"backlink and skiplink are identical at seq num {seq_num}")
    elif skiplink is not None:
        raise LinkArgumentError(f"no skiplink is allowed at seq num {seq_num}: its lipmaa target is the backlink")


def unsigned_entry_bytes(
    public_key: bytes,
    log_id: int,
    seq_num: int,
    payload_size: int,
    payload_hash: Hash,
    backlink: Hash | None,
    skiplink: Hash | None,
) -> bytes:
    parts = [TAG, public_key, encode_varu64(log_id), encode_varu64(seq_num)]
    if skiplink is not None:
        parts.append(skiplink.to_bytes())
    if backlink is not None:
        parts.append(backlink.to_bytes())
    parts.append(encode_varu64(payload_size))
    parts.append(payload_hash.to_bytes())
    return b"".join(parts)


def sign_entry(
    key_pair: KeyPair,
    *,
    log_id: int,
    seq_num: int,
    payload: bytes,
    backlink: Hash | None,
    skiplink: Hash | None,
) -> bytes:
    """Encode and sign an entry for `payload` (the encoded operation); returns the entry bytes."""
    check_link_arguments(seq_num, backlink, skiplink)
    if not 0 <= log_id <= MAX_U64:
        raise LinkArgumentError(f"log id must be between 0 and 2^64-1, got {log_id}")
    unsigned = unsigned_entry_bytes(
        key_pair.public_key.to_bytes(), log_id, seq_num, len(payload), Hash.of(payload), backlink, skiplink
    )
    return unsigned + key_pair.sign(unsigned)
