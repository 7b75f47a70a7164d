"""A small immutable wrapper around validated bytes, shared by hashes and public keys."""

from __future__ import annotations

from typing import ClassVar

__all__ = ["BytesValue"]


class BytesValue:
    """Validated bytes: hex and bytes forms, ordering by bytes, hashable, immutable.

    Values compare equal only within one family (`_family`): a hash never equals a public key with the
    same bytes, but an operation id equals the hash it is.
    """

    __slots__ = ("_bytes",)
    _bytes: bytes
    _family: ClassVar[type[BytesValue]]

    def _set(self, raw: bytes) -> None:
        object.__setattr__(self, "_bytes", raw)

    def to_bytes(self) -> bytes:
        return self._bytes

    def __bytes__(self) -> bytes:
        return self._bytes

    def hex(self) -> str:
        return self._bytes.hex()

    def __str__(self) -> str:
        return self._bytes.hex()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._bytes.hex()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, self._family) and other._bytes == self._bytes

    def __lt__(self, other: BytesValue) -> bool:
        return self._bytes < other._bytes

    def __le__(self, other: BytesValue) -> bool:
        return self._bytes <= other._bytes

    def __gt__(self, other: BytesValue) -> bool:
        return self._bytes > other._bytes

    def __ge__(self, other: BytesValue) -> bool:
        return self._bytes >= other._bytes

    def __hash__(self) -> int:
        return hash(self._bytes)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")
