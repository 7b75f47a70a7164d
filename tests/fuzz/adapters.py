"""The transport's decoding entry points, driven by fuzz bytes. The only fuzz code that knows how the
transport is built (its handshake steps and stream keys): when the handshake changes, only this changes.

- `receive_messages`: fuzz bytes are the plaintext of box-stream frames (each `[u16 declared length][body]`),
  sealed here with known keys so that the fuzzer reaches the frame and message length logic behind the
  authentication; frames whose declared length is not their body's do not open, as on the wire.
- `server_handshake`: fuzz bytes are what a client sends to a server over a real socket pair. With a first
  byte of 1, the adapter first sends a valid client hello for the fuzzer's 32-byte ephemeral key (so the
  fuzzer chooses the key the server multiplies with, including low-order points).
"""

from __future__ import annotations

import asyncio
import functools
import socket
import struct

import nacl.bindings as sodium

from p2panda.identity import KeyPair
from p2panda.node import shs, transport

__all__ = ["frame_seeds", "handshake_seeds", "receive_messages", "server_handshake"]

_KEY = bytes(range(32))
_NONCE = bytes(range(24))
_MAX_MESSAGE = 200_000


@functools.cache
def _loop() -> asyncio.AbstractEventLoop:
    return asyncio.new_event_loop()


def _seal_frames(data: bytes) -> bytes:
    out, nonce, i = [], _NONCE, 0
    while i + 2 <= len(data):
        (declared,) = struct.unpack(">H", data[i : i + 2])
        body = data[i + 2 : i + 2 + min(declared, 4096)]
        i += 2 + len(body)
        header_nonce, body_nonce = nonce, transport._increment(nonce)
        nonce = transport._increment(body_nonce)
        if declared == 0 and not body:  # a goodbye
            out.append(sodium.crypto_secretbox(bytes(18), header_nonce, _KEY))
            continue
        sealed = sodium.crypto_secretbox(body, body_nonce, _KEY)
        header = sodium.crypto_secretbox(struct.pack(">H", declared) + sealed[:16], header_nonce, _KEY)
        out.append(header + sealed[16:])
    return b"".join(out) + data[i:]


def receive_messages(data: bytes) -> list[bytes]:
    """Every message a `BoxStream` reads from these frames, until it raises `StreamClosed`."""

    async def read() -> list[bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(_seal_frames(data))
        reader.feed_eof()
        keys = shs.SessionKeys(
            encrypt_key=_KEY,
            encrypt_nonce=_NONCE,
            decrypt_key=_KEY,
            decrypt_nonce=_NONCE,
            peer=_server_key().public_key,
        )
        stream = transport.BoxStream(reader, None, keys)  # type: ignore[arg-type]
        messages = []
        while True:
            messages.append(await stream.receive_message(_MAX_MESSAGE))

    return _loop().run_until_complete(read())


def frame_seeds() -> list[bytes]:
    message = struct.pack(">I", 5) + b"hello"
    two = struct.pack(">I", 6) + b"abc"
    return [
        struct.pack(">H", len(message)) + message,
        struct.pack(">H", len(two)) + two + struct.pack(">H", 3) + b"def",
        struct.pack(">H", 0),
    ]


@functools.cache
def _server_key() -> KeyPair:
    return KeyPair.from_private_key(bytes(range(32)))


def server_handshake(data: bytes) -> object:
    """The server side of the handshake against a client that sends `data` and then closes."""
    if data[:1] == b"\x01" and len(data) >= 33:
        ephemeral = data[1:33]
        data = shs._hmac(transport.DEFAULT_NETWORK_KEY, ephemeral) + ephemeral + data[33:]

    async def serve() -> object:
        ours, theirs = socket.socketpair()
        try:
            theirs.sendall(data)
            theirs.shutdown(socket.SHUT_WR)
            reader, writer = await asyncio.open_connection(sock=ours)
            try:
                return await transport.accept(reader, writer, _server_key())
            finally:
                writer.close()
        finally:
            theirs.close()

    return _loop().run_until_complete(serve())


def handshake_seeds() -> list[bytes]:
    return [b"\x01" + bytes(range(1, 33)) + bytes(112), bytes(64)]
