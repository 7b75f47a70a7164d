"""Node-to-node transport: the standard Secret Handshake (shs1, `shs.py`), then box-stream (PyNaCl).

The handshake is Scuttlebutt's SHS exactly, over a TCP stream, keyed by each node's Ed25519 node key and a
32-byte network key: a client dials a peer by its node key and address (`<node key>@host:port`). Without
the network key a peer cannot produce a valid hello, and without the server's node key it cannot produce
an auth the server opens: either way the server closes before revealing anything, its key included.

Box-stream (the standard framing that follows SHS): per direction a key and a starting nonce from the
handshake. Each frame is a 34-byte secretbox'ed header (body length as u16 big-endian || the body's
16-byte tag), then the body's ciphertext; the nonce advances by one per header and per body. Bodies are
at most 4096 bytes (`MAX_FRAME`, the box-stream limit). A header of 18 zero bytes says goodbye.

Messages (`send_message`, `receive_message`), our layer above box-stream: a message longer than a frame
is carried by several. The first frame starts with the message length as u32 big-endian; frames follow
until that many bytes have come. The receiver names the largest message it takes and closes the stream
on a longer one, before reading it.

Checks beyond the handshake's (`shs.py` S1-S7), each a typed error naming the peer:

- T1 a frame header or body that does not authenticate, or a header announcing more than `MAX_FRAME`
  bytes, closes the stream (`StreamClosed`).
- T2 a connection that ends mid-handshake is a `HandshakeFailed` naming the message that did not come;
  one that does not finish within `HANDSHAKE_TIMEOUT` seconds is a `HandshakeFailed` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

import blake3
import nacl.bindings as sodium
import nacl.exceptions

from p2panda.identity import KeyPair, PublicKey
from p2panda.node.errors import NodeError
from p2panda.node.shs import (
    ACCEPT_SIZE,
    AUTH_SIZE,
    HELLO_SIZE,
    ClientHandshake,
    HandshakeFailed,
    ServerHandshake,
    SessionKeys,
)

__all__ = [
    "DEFAULT_NETWORK_KEY",
    "HANDSHAKE_TIMEOUT",
    "Admit",
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
MAX_FRAME = 4096
HANDSHAKE_TIMEOUT = 10.0
_GOODBYE = bytes(18)


class StreamClosed(NodeError):
    """The peer said goodbye, or the connection ended or was tampered with."""


class MessageTooLarge(StreamClosed):
    """A message longer than the receiver takes; the stream is not read further."""


async def _read(reader: asyncio.StreamReader, n: int, step: str, waiting_for: str) -> bytes:
    try:
        return await reader.readexactly(n)
    except (asyncio.IncompleteReadError, ConnectionError) as exc:  # T2
        got = len(exc.partial) if isinstance(exc, asyncio.IncompleteReadError) else 0
        raise HandshakeFailed(
            f"{step}: the peer closed the connection after {got} of {n} bytes ({waiting_for})"
        ) from None


async def _write(writer: asyncio.StreamWriter, data: bytes, step: str) -> None:
    writer.write(data)
    try:
        await writer.drain()
    except ConnectionError as exc:
        raise HandshakeFailed(f"{step}: the connection broke while sending: {exc}") from None


def _increment(nonce: bytes) -> bytes:
    return (int.from_bytes(nonce, "big") + 1).to_bytes(24, "big") if nonce != b"\xff" * 24 else bytes(24)


class BoxStream:
    """An authenticated, encrypted stream of frames to one peer (`peer` is its node key)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keys: SessionKeys) -> None:
        self._reader, self._writer = reader, writer
        self._keys = keys
        self._send_nonce, self._receive_nonce = keys.encrypt_nonce, keys.decrypt_nonce
        self.peer = keys.peer
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
        if length > MAX_FRAME:  # T1
            raise StreamClosed(f"frame header from {self.peer.hex()} announces {length} bytes, at most {MAX_FRAME}")
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
    server: PublicKey,
    network_key: bytes = DEFAULT_NETWORK_KEY,
) -> BoxStream:
    """Client side of the handshake on an open connection to the node whose key is `server`."""
    try:
        return await asyncio.wait_for(_client(reader, writer, key_pair, server, network_key), HANDSHAKE_TIMEOUT)
    except TimeoutError:  # T2
        raise HandshakeFailed(f"node {server.hex()} did not complete the handshake in {HANDSHAKE_TIMEOUT:g}s") from None


async def _client(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    key_pair: KeyPair,
    server: PublicKey,
    network_key: bytes,
) -> BoxStream:
    handshake = ClientHandshake(network_key, key_pair, server)
    await _write(writer, handshake.hello(), "M1 client hello")
    handshake.read_hello(await _read(reader, HELLO_SIZE, "M2 server hello", "it is not on our network, or not a node"))
    await _write(writer, handshake.auth(), "M3 client auth")
    accept_message = await _read(
        reader,
        ACCEPT_SIZE,
        "M4 server accept",
        f"it is not node {server.hex()}, or it does not admit us",
    )
    return BoxStream(reader, writer, handshake.read_accept(accept_message))


async def accept(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    key_pair: KeyPair,
    network_key: bytes = DEFAULT_NETWORK_KEY,
    admit: Admit | None = None,
) -> BoxStream:
    """Server side of the handshake on an accepted connection. `admit(peer)` may refuse a client key."""
    try:
        return await asyncio.wait_for(_server(reader, writer, key_pair, network_key, admit), HANDSHAKE_TIMEOUT)
    except TimeoutError:  # T2
        raise HandshakeFailed(f"the client did not complete the handshake in {HANDSHAKE_TIMEOUT:g}s") from None


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
    handshake = ServerHandshake(network_key, key_pair)
    handshake.read_hello(await _read(reader, HELLO_SIZE, "M1 client hello", "it sent no full hello"))
    await _write(writer, handshake.hello(), "M2 server hello")
    client = handshake.read_auth(await _read(reader, AUTH_SIZE, "M3 client auth", "it sent no full auth"))
    if admit is not None and not admit(client):
        # Closing without M4: the client learns only that we would not talk to it.
        raise HandshakeFailed(f"M3 client auth: node {client.hex()} is not admitted here")
    await _write(writer, handshake.accept(), "M4 server accept")
    return BoxStream(reader, writer, handshake.keys())
