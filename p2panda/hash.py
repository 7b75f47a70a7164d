"""YASMF-BLAKE3 hashes: `0x00 0x20 || BLAKE3-256(data)`, 34 bytes, shown as 68 lowercase hex chars."""

from __future__ import annotations

from typing import Final, Self

from blake3 import blake3

from p2panda._bytes_value import BytesValue
from p2panda.errors import P2PandaError

__all__ = ["HASH_SIZE", "Hash", "HashError"]

HASH_SIZE: Final = 34
_PREFIX: Final = b"\x00\x20"


class HashError(P2PandaError):
    """A value is not a well-formed YASMF-BLAKE3 hash."""


class Hash(BytesValue):
    """A YASMF-BLAKE3 hash. Compares and sorts by its bytes (which is also hex order)."""

    __slots__ = ()

    def __init__(self, raw: bytes) -> None:
        raw = bytes(raw)
        if len(raw) != HASH_SIZE:
            raise HashError(f"hash must be {HASH_SIZE} bytes, got {len(raw)}: {raw.hex()!r}")
        # The Rust decoder checks only the first byte (the YASMF type); we also check the second
        # (the digest length) because any other value can never be produced by a p2panda 0.8 node.
        if raw[0] != 0x00:
            raise HashError(f"hash must start with 0x00 (blake3), got 0x{raw[0]:02x} in {raw.hex()!r}")
        if raw[1] != 0x20:
            raise HashError(
                f"hash must have digest length 0x20 after its type byte, got 0x{raw[1]:02x} in {raw.hex()!r}"
            )
        self._set(raw)

    @classmethod
    def of(cls, data: bytes) -> Self:
        """Hash arbitrary bytes."""
        h = object.__new__(cls)
        h._set(_PREFIX + blake3(data).digest())
        return h

    @classmethod
    def from_hex(cls, text: str) -> Self:
        if not isinstance(text, str):
            raise HashError(f"hash hex must be a string, got {type(text).__name__}")
        if len(text) != 2 * HASH_SIZE:
            raise HashError(f"hash hex must be {2 * HASH_SIZE} chars, got {len(text)}: {text!r}")
        if text != text.lower():
            raise HashError(f"hash hex must be lowercase: {text!r}")
        try:
            raw = bytes.fromhex(text)
        except ValueError as exc:
            raise HashError(f"hash is not valid hex: {text!r}") from exc
        return cls(raw)


Hash._family = Hash
