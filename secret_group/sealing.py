"""Symmetric sealing for history envelopes and commit handovers: XChaCha20-Poly1305 (IETF) from
libsodium via PyNaCl, with a random 24-byte nonce per message (random nonces are safe at this size).

Associated data binds a sealed message to where it belongs, so a ciphertext copied elsewhere does not
open: for history envelopes the group id, the history secret's epoch and the author's public key; for
handovers the group id and the commit's parent. The document an inner operation acts on is not bound
here: a CREATE's document id is the envelope's own entry hash, unknown before signing, and the inner
operation names its `previous` itself, inside the authenticated plaintext.
"""

from __future__ import annotations

import cbor2
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
)
from nacl.exceptions import CryptoError
from nacl.utils import random

from secret_group.errors import TamperedCiphertext

__all__ = ["KEY_BYTES", "seal", "open_sealed", "associated_data"]

KEY_BYTES = 32
_NONCE = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES


def associated_data(purpose: str, *parts: str | int | bytes) -> bytes:
    """Canonical bytes naming a sealed message's purpose and context."""
    return cbor2.dumps([purpose, *parts], canonical=True)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = random(_NONCE)
    return nonce + crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, aad, nonce, key)


def open_sealed(key: bytes, sealed: bytes, aad: bytes, what: str) -> bytes:
    """The plaintext; `TamperedCiphertext` naming `what` when it does not authenticate."""
    if len(sealed) < _NONCE + 16:
        raise TamperedCiphertext(f"{what} is {len(sealed)} bytes, too short to be sealed")
    try:
        return bytes(crypto_aead_xchacha20poly1305_ietf_decrypt(sealed[_NONCE:], aad, sealed[:_NONCE], key))
    except CryptoError as exc:
        raise TamperedCiphertext(f"{what} does not decrypt: tampered or sealed for another context") from exc
