"""The Secret Handshake, version 1 (shs1; Tarr, "Designing a Secret Handshake", 2015), sans-IO.

Exactly the published protocol, byte for byte (checked against the reference implementation's vectors in
`tests/p2panda/node/vectors/`): the client must know the server's long-term key before it dials, and a
client that dials with another key, or on another network, learns nothing from the server.

Notation: client A, server B; a, b ephemeral Curve25519 key pairs; A, B long-term Ed25519 key pairs (the
node keys); K the 32-byte network key; hmac is HMAC-SHA-512-256 (libsodium's crypto_auth); box(k, m) is
crypto_secretbox with a zero nonce; ab = a * b, aB = a * curve(B), Ab = curve(A) * b.

- M1 client hello, 64 bytes: hmac(K, a_pub) || a_pub.
- M2 server hello, 64 bytes: hmac(K, b_pub) || b_pub.
- M3 client auth, 112 bytes: box(sha256(K || ab || aB), sig_A || A_pub) with
  sig_A = sign_A(K || B_pub || sha256(ab)).
- M4 server accept, 80 bytes: box(sha256(K || ab || aB || Ab), sign_B(K || sig_A || A_pub || sha256(ab))).
- Outcome (box-stream keys): with s = sha256(sha256(K || ab || aB || Ab)), each side encrypts with
  sha256(s || peer's long-term key) starting at the nonce hmac(K, peer's ephemeral key)[:24], and
  decrypts with sha256(s || own long-term key) starting at hmac(K, own ephemeral key)[:24].

Checks (each failure a `HandshakeFailed` naming the message and what failed; nothing else escapes):

- S1 a message of the wrong length.
- S2 a hello (M1, M2) whose hmac is not of our network key: the peer is on another network.
- S3 a hello whose ephemeral key gives no shared secret (a low-order point).
- S4 M3 does not open: the client dialled another server key (or the message was tampered with).
- S5 M3's signature does not verify with the key inside it, or that key is not a usable Ed25519 key.
- S6 M4 does not open or its signature does not verify: the server does not hold the key we dialled.
- S7 a step out of order (e.g. `auth()` before the server's hello was read).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import nacl.bindings as sodium
import nacl.exceptions
import nacl.public
import nacl.signing

from p2panda.identity import InvalidPublicKey, KeyPair, PublicKey
from p2panda.node.errors import NodeError

__all__ = [
    "ACCEPT_SIZE",
    "AUTH_SIZE",
    "HELLO_SIZE",
    "ClientHandshake",
    "HandshakeFailed",
    "ServerHandshake",
    "SessionKeys",
]

HELLO_SIZE = 64
AUTH_SIZE = 112
ACCEPT_SIZE = 80
_ZERO_NONCE = bytes(24)


class HandshakeFailed(NodeError):
    """The peer did not complete the secret handshake; the message says which step failed and why."""


@dataclass(frozen=True, slots=True)
class SessionKeys:
    """What a completed handshake yields: box-stream keys and starting nonces, and the peer's node key."""

    encrypt_key: bytes
    encrypt_nonce: bytes
    decrypt_key: bytes
    decrypt_nonce: bytes
    peer: PublicKey


def _hmac(key: bytes, message: bytes) -> bytes:
    # HMAC-SHA-512-256 (libsodium's crypto_auth): HMAC-SHA-512 truncated to 32 bytes.
    return hmac.new(key, message, hashlib.sha512).digest()[:32]


def _sha256(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def _check_size(message: bytes, size: int, step: str) -> None:  # S1
    if len(message) != size:
        raise HandshakeFailed(f"{step}: expected {size} bytes, got {len(message)}")


def _shared(secret: bytes, public: bytes, step: str) -> bytes:  # S3
    try:
        return sodium.crypto_scalarmult(secret, public)
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        raise HandshakeFailed(f"{step}: key {public.hex()} gives no shared secret") from None


def _curve_public(ed25519_public: bytes, step: str) -> bytes:  # S5
    try:
        return sodium.crypto_sign_ed25519_pk_to_curve25519(ed25519_public)
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        raise HandshakeFailed(f"{step}: {ed25519_public.hex()} is not a usable Ed25519 public key") from None


def _curve_secret(key_pair: KeyPair) -> bytes:
    return bytes(nacl.signing.SigningKey(key_pair.private_key()).to_curve25519_private_key())


def _open(key: bytes, box: bytes, step: str, why: str) -> bytes:
    try:
        return sodium.crypto_secretbox_open(box, _ZERO_NONCE, key)
    except nacl.exceptions.CryptoError:
        raise HandshakeFailed(f"{step}: the box does not open ({why})") from None


def _verifies(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        return False
    return True


class _Side:
    """What both sides share: the network key, the long-term and the ephemeral key pairs, the hellos."""

    def __init__(self, network_key: bytes, key_pair: KeyPair, ephemeral: bytes | None) -> None:
        if len(network_key) != 32:
            raise ValueError(f"a network key is 32 bytes, not {len(network_key)}")
        self.network_key = network_key
        self.key_pair = key_pair
        # `ephemeral` (a Curve25519 secret key) is for known-answer tests only; a real handshake draws one.
        secret = nacl.public.PrivateKey(ephemeral) if ephemeral is not None else nacl.public.PrivateKey.generate()
        self._ephemeral_secret = bytes(secret)
        self._ephemeral_public = bytes(secret.public_key)
        self._peer_ephemeral: bytes | None = None
        self._ab: bytes | None = None

    def hello(self) -> bytes:
        """Our hello (M1 for the client, M2 for the server)."""
        return _hmac(self.network_key, self._ephemeral_public) + self._ephemeral_public

    def _read_hello(self, message: bytes, step: str) -> None:
        _check_size(message, HELLO_SIZE, step)
        mac, public = message[:32], message[32:]
        if not hmac.compare_digest(mac, _hmac(self.network_key, public)):  # S2
            raise HandshakeFailed(f"{step}: the hello is not for our network key (the peer is on another network)")
        self._ab = _shared(self._ephemeral_secret, public, step)
        self._peer_ephemeral = public

    def _require(self, value: bytes | None, step: str) -> bytes:  # S7
        if value is None:
            raise HandshakeFailed(f"{step}: out of order (an earlier message was not read)")
        return value

    def _keys(self, secret: bytes, peer: PublicKey) -> SessionKeys:
        base = _sha256(_sha256(secret))
        peer_ephemeral = self._require(self._peer_ephemeral, "keys")
        return SessionKeys(
            encrypt_key=_sha256(base, peer.to_bytes()),
            encrypt_nonce=_hmac(self.network_key, peer_ephemeral)[:24],
            decrypt_key=_sha256(base, self.key_pair.public_key.to_bytes()),
            decrypt_nonce=_hmac(self.network_key, self._ephemeral_public)[:24],
            peer=peer,
        )


class ClientHandshake(_Side):
    """The dialling side: it knows the server's node key. `hello()` -> M1; `read_hello(M2)`; `auth()` -> M3;
    `read_accept(M4)` -> the session keys."""

    def __init__(
        self, network_key: bytes, key_pair: KeyPair, server: PublicKey, *, ephemeral: bytes | None = None
    ) -> None:
        super().__init__(network_key, key_pair, ephemeral)
        self.server = server
        self._server_curve = _curve_public(server.to_bytes(), "dial")
        self._a_b: bytes | None = None
        self._sig_a: bytes | None = None

    def read_hello(self, message: bytes) -> None:
        self._read_hello(message, "M2 server hello")
        self._a_b = _shared(self._ephemeral_secret, self._server_curve, "M2 server hello")

    def auth(self) -> bytes:
        ab, a_b = self._require(self._ab, "M3 client auth"), self._require(self._a_b, "M3 client auth")
        k = self.network_key
        self._sig_a = self.key_pair.sign(k + self.server.to_bytes() + _sha256(ab))
        return sodium.crypto_secretbox(
            self._sig_a + self.key_pair.public_key.to_bytes(), _ZERO_NONCE, _sha256(k, ab, a_b)
        )

    def read_accept(self, message: bytes) -> SessionKeys:
        step = "M4 server accept"
        _check_size(message, ACCEPT_SIZE, step)
        ab, a_b, sig_a = self._require(self._ab, step), self._require(self._a_b, step), self._require(self._sig_a, step)
        peer_ephemeral = self._require(self._peer_ephemeral, step)
        big_a_b = _shared(_curve_secret(self.key_pair), peer_ephemeral, step)
        k = self.network_key
        secret = k + ab + a_b + big_a_b
        why = f"the server does not hold node key {self.server.hex()}"
        sig_b = _open(_sha256(secret), message, step, why)  # S6
        if not _verifies(self.server.to_bytes(), k + sig_a + self.key_pair.public_key.to_bytes() + _sha256(ab), sig_b):
            raise HandshakeFailed(f"{step}: the signature does not verify ({why})")
        return self._keys(secret, self.server)


class ServerHandshake(_Side):
    """The accepting side. `read_hello(M1)`; `hello()` -> M2; `read_auth(M3)` -> the client's node key (the
    caller may refuse it and close without answering); `accept()` -> M4; `keys()` -> the session keys."""

    def __init__(self, network_key: bytes, key_pair: KeyPair, *, ephemeral: bytes | None = None) -> None:
        super().__init__(network_key, key_pair, ephemeral)
        self._a_b: bytes | None = None
        self._auth: bytes | None = None  # sig_A || A_pub
        self._secret: bytes | None = None
        self._client: PublicKey | None = None

    def read_hello(self, message: bytes) -> None:
        self._read_hello(message, "M1 client hello")

    def read_auth(self, message: bytes) -> PublicKey:
        step = "M3 client auth"
        _check_size(message, AUTH_SIZE, step)
        ab, client_ephemeral = self._require(self._ab, step), self._require(self._peer_ephemeral, step)
        k = self.network_key
        a_b = _shared(_curve_secret(self.key_pair), client_ephemeral, step)
        why = f"the client did not dial node key {self.key_pair.public_key.hex()}"
        opened = _open(_sha256(k, ab, a_b), message, step, why)  # S4
        sig_a, client_key = opened[:64], opened[64:]
        if not _verifies(client_key, k + self.key_pair.public_key.to_bytes() + _sha256(ab), sig_a):  # S5
            raise HandshakeFailed(f"{step}: the signature of {client_key.hex()} does not verify")
        client_curve = _curve_public(client_key, step)
        try:
            client = PublicKey(client_key)
        except InvalidPublicKey as exc:
            raise HandshakeFailed(f"{step}: {client_key.hex()} is not a valid node key: {exc}") from None
        big_a_b = _shared(self._ephemeral_secret, client_curve, step)
        self._a_b, self._auth, self._client = a_b, opened, client
        self._secret = k + ab + a_b + big_a_b
        return client

    def accept(self) -> bytes:
        step = "M4 server accept"
        ab, auth, secret = (
            self._require(self._ab, step),
            self._require(self._auth, step),
            self._require(self._secret, step),
        )
        sig_b = self.key_pair.sign(self.network_key + auth + _sha256(ab))
        return sodium.crypto_secretbox(sig_b, _ZERO_NONCE, _sha256(secret))

    def keys(self) -> SessionKeys:
        secret = self._require(self._secret, "keys")
        if self._client is None:
            raise HandshakeFailed("keys: out of order (the client's auth was not read)")
        return self._keys(secret, self._client)
