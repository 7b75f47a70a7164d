"""VarU64: the variable-length unsigned integers of Bamboo entries.

First byte < 248: the value itself. First byte 248+k (k = 1..8): k big-endian bytes follow. Only the
shortest form is valid.
"""

from __future__ import annotations

from p2panda.errors import P2PandaError

__all__ = ["VarU64Error", "encode_varu64", "decode_varu64", "MAX_U64"]

MAX_U64 = 2**64 - 1


class VarU64Error(P2PandaError):
    """Bytes that are not a canonical VarU64."""


def encode_varu64(value: int) -> bytes:
    if not 0 <= value <= MAX_U64:
        raise VarU64Error(f"value out of u64 range: {value}")
    if value < 248:
        return bytes((value,))
    length = (value.bit_length() + 7) // 8
    return bytes((247 + length,)) + value.to_bytes(length, "big")


def decode_varu64(data: bytes, offset: int = 0) -> tuple[int, int]:
    """Decode at `offset`; returns (value, offset after it)."""
    if offset >= len(data):
        raise VarU64Error(f"varu64 missing at byte {offset}: input ends")
    first = data[offset]
    if first < 248:
        return first, offset + 1
    length = first - 247
    end = offset + 1 + length
    if end > len(data):
        raise VarU64Error(f"varu64 at byte {offset} needs {length} more bytes, only {len(data) - offset - 1} left")
    value = int.from_bytes(data[offset + 1 : end], "big")
    # Non-canonical forms would let two different byte strings encode one entry, so hashes would differ.
    if value < 248 or (value.bit_length() + 7) // 8 != length:
        raise VarU64Error(f"varu64 at byte {offset} is not in its shortest form: {data[offset:end].hex()!r}")
    return value, end
