"""Ed25519 identities (RFC 8032, deterministic signatures) via libsodium (PyNaCl).

A private key is the 32-byte seed. A `PublicKey` is only ever constructed from a validated curve point.
"""

from __future__ import annotations

from functools import lru_cache

import nacl.bindings
import nacl.exceptions
import nacl.signing

from p2panda._bytes_value import BytesValue
from p2panda.errors import P2PandaError

__all__ = ["KeyPair", "PublicKey", "IdentityError", "InvalidPublicKey", "InvalidPrivateKey"]

PUBLIC_KEY_SIZE = 32
PRIVATE_KEY_SIZE = 32
SIGNATURE_SIZE = 64


class IdentityError(P2PandaError):
    """Root of identity errors."""


class InvalidPublicKey(IdentityError):
    """Bytes that are not an acceptable Ed25519 public key."""


class InvalidPrivateKey(IdentityError):
    """Bytes that are not a 32-byte Ed25519 seed."""


@lru_cache(maxsize=65536)
def _is_valid_point(raw: bytes) -> bool:
    """libsodium's point check costs about one signature verification (it includes a subgroup check);
    a node sees the same few authors over and over, so results are cached by the exact 32 bytes."""
    return bool(nacl.bindings.crypto_core_ed25519_is_valid_point(raw))


class PublicKey(BytesValue):
    """A validated Ed25519 public key (32 bytes)."""

    __slots__ = ()

    def __init__(self, raw: bytes) -> None:
        raw = bytes(raw)
        if len(raw) != PUBLIC_KEY_SIZE:
            raise InvalidPublicKey(f"public key must be {PUBLIC_KEY_SIZE} bytes, got {len(raw)}: {raw.hex()!r}")
        # Stricter than ed25519-dalek: libsodium also refuses small-order and non-canonical points,
        # which no honest key generator produces and which enable signature malleability tricks.
        if not _is_valid_point(raw):
            raise InvalidPublicKey(f"public key is not a valid ed25519 point: {raw.hex()!r}")
        self._set(raw)

    @classmethod
    def from_hex(cls, text: str) -> PublicKey:
        try:
            raw = bytes.fromhex(text)
        except (ValueError, TypeError) as exc:
            raise InvalidPublicKey(f"public key is not valid hex: {text!r}") from exc
        if text != text.lower():
            raise InvalidPublicKey(f"public key hex must be lowercase: {text!r}")
        return cls(raw)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True iff `signature` is a valid Ed25519 signature of `message` by this key."""
        if len(signature) != SIGNATURE_SIZE:
            return False
        try:
            nacl.bindings.crypto_sign_open(signature + message, self._bytes)
        except nacl.exceptions.BadSignatureError:
            return False
        return True


PublicKey._family = PublicKey


class KeyPair:
    """An Ed25519 signing key and its public key."""

    __slots__ = ("_public_key", "_signing_key")
    _signing_key: nacl.signing.SigningKey
    _public_key: PublicKey

    def __init__(self, signing_key: nacl.signing.SigningKey) -> None:
        object.__setattr__(self, "_signing_key", signing_key)
        object.__setattr__(self, "_public_key", PublicKey(bytes(signing_key.verify_key)))

    @classmethod
    def generate(cls) -> KeyPair:
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_private_key(cls, seed: bytes) -> KeyPair:
        seed = bytes(seed)
        if len(seed) != PRIVATE_KEY_SIZE:
            raise InvalidPrivateKey(f"private key must be a {PRIVATE_KEY_SIZE}-byte seed, got {len(seed)} bytes")
        return cls(nacl.signing.SigningKey(seed))

    @classmethod
    def from_private_key_hex(cls, text: str) -> KeyPair:
        try:
            seed = bytes.fromhex(text)
        except (ValueError, TypeError) as exc:
            raise InvalidPrivateKey("private key is not valid hex") from exc
        return cls.from_private_key(seed)

    @property
    def public_key(self) -> PublicKey:
        return self._public_key

    def private_key(self) -> bytes:
        """The 32-byte seed. Handle with care."""
        return bytes(self._signing_key)

    def sign(self, message: bytes) -> bytes:
        """Detached 64-byte Ed25519 signature."""
        return self._signing_key.sign(message).signature

    def __repr__(self) -> str:
        # Never print the private key.
        return f"KeyPair(public_key={self._public_key.hex()!r})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("KeyPair is immutable")
