"""Node-to-node transport: Secret Handshake (SHS) authentication, then box-stream framing (PyNaCl).

The handshake follows Scuttlebutt's SHS (Tarr, "Designing a Secret Handshake", 2015) over a TCP stream,
keyed by each node's Ed25519 key and a 32-byte network key. Without the network key a peer cannot
produce a valid hello, so the other side closes before revealing anything. One deviation: SHS needs the
client to know the server's long-term key in advance; ours lets a client dial a bare host:port, so the
server sends its long-term key after the hellos, sealed under the ephemeral shared secret (only a peer
holding the network key that completed the ephemeral exchange sees it), and the rest of SHS then proves
that the server holds that key. A client that expects a key checks it.

Steps (client A, server B; a/b ephemeral Curve25519, A/B long-term Ed25519; K network key):

- H1 client hello: hmac(K, a_pub) || a_pub; the server checks the hmac.
- H2 server hello: hmac(K, b_pub) || b_pub; the client checks it. Both compute ab = a*b.
- H3 server key: secretbox(sha256(K || ab), nonce 0, B_pub) (our addition).
- H4 client auth: sig_A = sign_A(K || B_pub || sha256(ab)); box(sha256(K || ab || aB), sig_A || A_pub),
  where aB = a * curve(B). The server checks sig_A and its allow/block lists.
- H5 server accept: sig_B = sign_B(K || sig_A || A_pub || sha256(ab)); box(sha256(K || ab || aB || Ab),
  sig_B), where Ab = curve(A) * b. The client checks sig_B.

Box-stream: per direction a key and a starting nonce derived from the handshake. Each frame is a 34-byte
secretbox'ed header (body length as u16 big-endian || the body's 16-byte tag), then the body's ciphertext;
the nonce advances by one per header and per body. A header of 18 zero bytes says goodbye.

Messages (`send_message`, `receive_message`): a message longer than a frame is carried by several. The first
frame starts with the message length as u32 big-endian; frames follow until that many bytes have come. The
receiver names the largest message it takes and closes the stream on a longer one, before reading it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import struct
from dataclasses import dataclass

import blake3
import nacl.bindings as sodium
import nacl.exceptions
import nacl.public
import nacl.signing

from p2panda.identity import KeyPair, PublicKey
from p2panda.node.errors import NodeError

__all__ = [
    "DEFAULT_NETWORK_KEY",
    "BoxStream",
    "HandshakeFailed",
    "StreamClosed",
    "accept",
    "connect",
    "MAX_FRAME",
    "MessageTooLarge",
]

# Public default network: anyone running this software with default settings can connect.
DEFAULT_NETWORK_KEY = blake3.blake3(b"p2panda secret chat network v1").digest()
MAX_FRAME = 65535
HANDSHAKE_TIMEOUT = 10.0
_ZERO_NONCE = bytes(24)
_GOODBYE = bytes(18)
_PROBE_SCALAR = bytes([9]) * 32


class HandshakeFailed(NodeError):
    """The peer did not complete the secret handshake (wrong network key, bad signature, refused key)."""


class StreamClosed(NodeError):
    """The peer said goodbye, or the connection ended or was tampered with."""


class MessageTooLarge(StreamClosed):
    """A message longer than the receiver takes; the stream is not read further."""


def _hmac(key: bytes, message: bytes) -> bytes:
    # HMAC-SHA-512-256 (libsodium's crypto_auth): HMAC-SHA-512 truncated to 32 bytes.
    return hmac.new(key, message, hashlib.sha512).digest()[:32]


def _sha256(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def _box(key: bytes, message: bytes) -> bytes:
    return sodium.crypto_secretbox(message, _ZERO_NONCE, key)


def _open(key: bytes, box: bytes, step: str) -> bytes:
    try:
        return sodium.crypto_secretbox_open(box, _ZERO_NONCE, key)
    except nacl.exceptions.CryptoError:
        raise HandshakeFailed(f"{step}: the box does not open") from None


def _verify(public_key: bytes, message: bytes, signature: bytes, step: str) -> None:
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        raise HandshakeFailed(f"{step}: signature of {public_key.hex()} does not verify") from None


def _curve_public(ed25519_public: bytes, step: str) -> bytes:
    try:
        return sodium.crypto_sign_ed25519_pk_to_curve25519(ed25519_public)
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError):
        raise HandshakeFailed(f"{step}: {ed25519_public.hex()} is not a usable public key") from None


def _curve_secret(key_pair: KeyPair) -> bytes:
    signing = nacl.signing.SigningKey(key_pair.private_key())
    return bytes(signing.to_curve25519_private_key())


def _hello(network_key: bytes, ephemeral: nacl.public.PrivateKey) -> bytes:
    public = bytes(ephemeral.public_key)
    return _hmac(network_key, public) + public


def _check_hello(network_key: bytes, hello: bytes, step: str) -> bytes:
    mac, public = hello[:32], hello[32:]
    if not hmac.compare_digest(mac, _hmac(network_key, public)):
        raise HandshakeFailed(f"{step}: hello is not for this network")
    try:  # libsodium refuses a low-order point (the shared secret would be zero): a typed refusal, not a crash
        sodium.crypto_scalarmult(_PROBE_SCALAR, public)
    except nacl.exceptions.RuntimeError:
        raise HandshakeFailed(f"{step}: ephemeral key {public.hex()} is a low-order point") from None
    return public


async def _read(reader: asyncio.StreamReader, n: int, step: str) -> bytes:
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError:
        raise HandshakeFailed(f"{step}: the peer closed the connection") from None


@dataclass(frozen=True, slots=True)
class _Keys:
    encrypt_key: bytes
    encrypt_nonce: bytes
    decrypt_key: bytes
    decrypt_nonce: bytes


def _stream_keys(
    network_key: bytes, secret: bytes, own: bytes, peer: bytes, own_ephemeral: bytes, peer_ephemeral: bytes
) -> _Keys:
    base = _sha256(_sha256(secret))
    return _Keys(
        encrypt_key=_sha256(base, peer),
        encrypt_nonce=_hmac(network_key, peer_ephemeral)[:24],
        decrypt_key=_sha256(base, own),
        decrypt_nonce=_hmac(network_key, own_ephemeral)[:24],
    )


def _increment(nonce: bytes) -> bytes:
    return (int.from_bytes(nonce, "big") + 1).to_bytes(24, "big") if nonce != b"\xff" * 24 else bytes(24)


class BoxStream:
    """An authenticated, encrypted stream of frames to one peer (`peer` is its node key)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keys: _Keys, peer: PublicKey
    ) -> None:
        self._reader, self._writer = reader, writer
        self._keys = keys
        self._send_nonce, self._receive_nonce = keys.encrypt_nonce, keys.decrypt_nonce
        self.peer = peer
        self._closed = False

    async def send(self, body: bytes) -> None:
        if self._closed:
            raise StreamClosed("stream is closed")
        if not 0 < len(body) <= MAX_FRAME:
            raise ValueError(f"a frame carries 1 to {MAX_FRAME} bytes, not {len(body)}")
        header_nonce, body_nonce = self._send_nonce, _increment(self._send_nonce)
        self._send_nonce = _increment(body_nonce)
        sealed = sodium.crypto_secretbox(body, body_nonce, self._keys.encrypt_key)
        tag, ciphertext = sealed[:16], sealed[16:]
        header = sodium.crypto_secretbox(struct.pack(">H", len(body)) + tag, header_nonce, self._keys.encrypt_key)
        self._writer.write(header + ciphertext)
        await self._writer.drain()

    async def send_message(self, message: bytes) -> None:
        data = struct.pack(">I", len(message)) + message
        for start in range(0, len(data), MAX_FRAME):
            await self.send(data[start : start + MAX_FRAME])

    async def receive_message(self, max_size: int) -> bytes:
        """The next message of at most `max_size` bytes; raises MessageTooLarge (a StreamClosed) on a longer one
        and StreamClosed as `receive` does."""
        first = await self.receive()
        if len(first) < 4:
            raise StreamClosed(f"message from {self.peer.hex()} starts with a frame of {len(first)} bytes")
        (length,) = struct.unpack(">I", first[:4])
        if length > max_size:
            raise MessageTooLarge(f"message of {length} bytes from {self.peer.hex()}; at most {max_size} are taken")
        parts, received = [first[4:]], len(first) - 4
        while received < length:
            part = await self.receive()
            parts.append(part)
            received += len(part)
        if received != length:
            raise StreamClosed(f"message from {self.peer.hex()} is {received} bytes, its header says {length}")
        return b"".join(parts)

    async def receive(self) -> bytes:
        """The next frame; raises StreamClosed on goodbye, end of stream or tampering."""
        try:
            sealed_header = await self._reader.readexactly(34)
        except (asyncio.IncompleteReadError, ConnectionError):
            raise StreamClosed(f"connection to {self.peer.hex()} ended") from None
        header_nonce, body_nonce = self._receive_nonce, _increment(self._receive_nonce)
        try:
            header = sodium.crypto_secretbox_open(sealed_header, header_nonce, self._keys.decrypt_key)
        except nacl.exceptions.CryptoError:
            raise StreamClosed(f"frame header from {self.peer.hex()} does not authenticate") from None
        if header == _GOODBYE:
            raise StreamClosed(f"{self.peer.hex()} said goodbye")
        (length,) = struct.unpack(">H", header[:2])
        try:
            ciphertext = await self._reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            raise StreamClosed(f"connection to {self.peer.hex()} ended within a frame") from None
        try:
            body = sodium.crypto_secretbox_open(header[2:] + ciphertext, body_nonce, self._keys.decrypt_key)
        except nacl.exceptions.CryptoError:
            raise StreamClosed(f"frame body from {self.peer.hex()} does not authenticate") from None
        self._receive_nonce = _increment(body_nonce)
        return body

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(ConnectionError, RuntimeError):
                goodbye = sodium.crypto_secretbox(_GOODBYE, self._send_nonce, self._keys.encrypt_key)
                self._writer.write(goodbye)
                await self._writer.drain()
        self._writer.close()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._writer.wait_closed()


async def connect(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    key_pair: KeyPair,
    network_key: bytes = DEFAULT_NETWORK_KEY,
    expected: PublicKey | None = None,
) -> BoxStream:
    """Client side of the handshake on an open connection."""
    return await asyncio.wait_for(_client(reader, writer, key_pair, network_key, expected), HANDSHAKE_TIMEOUT)


async def _client(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    key_pair: KeyPair,
    network_key: bytes,
    expected: PublicKey | None,
) -> BoxStream:
    ephemeral = nacl.public.PrivateKey.generate()
    writer.write(_hello(network_key, ephemeral))  # H1
    await writer.drain()
    server_ephemeral = _check_hello(network_key, await _read(reader, 64, "H2"), "H2")
    ab = sodium.crypto_scalarmult(bytes(ephemeral), server_ephemeral)
    server_key = _open(_sha256(network_key, ab), await _read(reader, 32 + 16, "H3"), "H3")  # H3
    if expected is not None and server_key != expected.to_bytes():
        raise HandshakeFailed(f"H3: the peer is {server_key.hex()}, not {expected.hex()}")
    a_b = sodium.crypto_scalarmult(bytes(ephemeral), _curve_public(server_key, "H3"))
    own = key_pair.public_key.to_bytes()
    sig_a = key_pair.sign(network_key + server_key + _sha256(ab))
    writer.write(_box(_sha256(network_key, ab, a_b), sig_a + own))  # H4
    await writer.drain()
    big_a_b = sodium.crypto_scalarmult(_curve_secret(key_pair), server_ephemeral)
    secret = network_key + ab + a_b + big_a_b
    sig_b = _open(_sha256(secret), await _read(reader, 64 + 16, "H5"), "H5")
    _verify(server_key, network_key + sig_a + own + _sha256(ab), sig_b, "H5")
    keys = _stream_keys(network_key, secret, own, server_key, bytes(ephemeral.public_key), server_ephemeral)
    return BoxStream(reader, writer, keys, PublicKey(server_key))


async def accept(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    key_pair: KeyPair,
    network_key: bytes = DEFAULT_NETWORK_KEY,
    admit: Admit | None = None,
) -> BoxStream:
    """Server side of the handshake on an accepted connection. `admit(peer)` may refuse a client key."""
    return await asyncio.wait_for(_server(reader, writer, key_pair, network_key, admit), HANDSHAKE_TIMEOUT)


class Admit:
    """Allow and block lists of node keys: a key is admitted when it is not blocked and, with an allow
    list, listed."""

    def __init__(self, allow: frozenset[str] | None = None, block: frozenset[str] = frozenset()) -> None:
        self.allow, self.block = allow, block

    def __call__(self, peer: PublicKey) -> bool:
        key = peer.hex()
        return key not in self.block and (self.allow is None or key in self.allow)


async def _server(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    key_pair: KeyPair,
    network_key: bytes,
    admit: Admit | None,
) -> BoxStream:
    client_ephemeral = _check_hello(network_key, await _read(reader, 64, "H1"), "H1")
    ephemeral = nacl.public.PrivateKey.generate()
    writer.write(_hello(network_key, ephemeral))  # H2
    ab = sodium.crypto_scalarmult(bytes(ephemeral), client_ephemeral)
    own = key_pair.public_key.to_bytes()
    writer.write(_box(_sha256(network_key, ab), own))  # H3
    await writer.drain()
    a_b = sodium.crypto_scalarmult(_curve_secret(key_pair), client_ephemeral)
    opened = _open(_sha256(network_key, ab, a_b), await _read(reader, 96 + 16, "H4"), "H4")
    sig_a, client_key = opened[:64], opened[64:]
    _verify(client_key, network_key + own + _sha256(ab), sig_a, "H4")
    try:
        peer = PublicKey(client_key)
    except Exception as exc:
        raise HandshakeFailed(f"H4: {client_key.hex()} is not a valid node key: {exc}") from None
    if admit is not None and not admit(peer):
        raise HandshakeFailed(f"H4: node {client_key.hex()} is not admitted here")
    big_a_b = sodium.crypto_scalarmult(bytes(ephemeral), _curve_public(client_key, "H4"))
    secret = network_key + ab + a_b + big_a_b
    sig_b = key_pair.sign(network_key + sig_a + client_key + _sha256(ab))
    writer.write(_box(_sha256(secret), sig_b))  # H5
    await writer.drain()
    keys = _stream_keys(network_key, secret, own, client_key, bytes(ephemeral.public_key), client_ephemeral)
    return BoxStream(reader, writer, keys, peer)
