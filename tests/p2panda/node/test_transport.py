"""Secret handshake and box-stream over real sockets on 127.0.0.1: a good session, and every way a peer can
fail the handshake or the stream, each a typed error naming the message (M1-M4) and what failed."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import nacl.secret
import pytest

from p2panda import KeyPair
from p2panda.node import transport
from p2panda.node.shs import ClientHandshake, ServerHandshake, SessionKeys
from p2panda.node.transport import (
    DEFAULT_NETWORK_KEY,
    MAX_FRAME,
    Admit,
    BoxStream,
    HandshakeFailed,
    MessageTooLarge,
    StreamClosed,
    accept,
    connect,
)

SERVER, CLIENT = KeyPair.from_private_key(bytes([7]) * 32), KeyPair.from_private_key(bytes([8]) * 32)
OTHER = KeyPair.from_private_key(bytes([9]) * 32)
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[int]:
    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()
        await srv.wait_closed()


@asynccontextmanager
async def accepting(
    network_key: bytes = DEFAULT_NETWORK_KEY, admit: Admit | None = None
) -> AsyncIterator[tuple[int, asyncio.Future[BoxStream]]]:
    """A real `accept` on a port; its outcome (a stream or the exception it raised) in the future."""
    outcome: asyncio.Future[BoxStream] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            outcome.set_result(await accept(reader, writer, SERVER, network_key, admit))
        except BaseException as exc:  # handed to the test, which asserts its exact type and message
            outcome.set_exception(exc)
            writer.close()

    async with server(handle) as port:
        yield port, outcome


async def open_to(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def test_handshake_then_frames_both_ways() -> None:
    async with accepting() as (port, accepted):
        client = await connect(*await open_to(port), CLIENT, SERVER.public_key)
        remote = await accepted
        assert client.peer == SERVER.public_key and remote.peer == CLIENT.public_key
        for size in (1, 100, MAX_FRAME):
            await client.send(bytes([size % 256]) * size)
            assert await remote.receive() == bytes([size % 256]) * size
        await remote.send(b"pong")
        assert await client.receive() == b"pong"
        with pytest.raises(ValueError, match="a frame carries 1 to 4096 bytes, not 4097"):
            await client.send(bytes(MAX_FRAME + 1))
        await client.close()
        with pytest.raises(StreamClosed, match="goodbye"):
            await remote.receive()
        await remote.close()


async def test_wrong_network_key_fails_on_both_sides() -> None:
    async with accepting() as (port, accepted):
        with pytest.raises(
            HandshakeFailed,
            match=r"M2 server hello: the peer closed the connection after 0 of 64 bytes \(it is not on our network",
        ):
            await connect(*await open_to(port), CLIENT, SERVER.public_key, bytes(32))
        with pytest.raises(HandshakeFailed, match="M1 client hello: the hello is not for our network key"):
            await accepted


async def test_dialling_the_wrong_node_key_fails_on_both_sides() -> None:
    # The server at the address is SERVER; the client insists on OTHER. Standard SHS: the server cannot
    # open the client's auth, closes, and the client learns nothing about who is there.
    async with accepting() as (port, accepted):
        with pytest.raises(
            HandshakeFailed,
            match=f"M4 server accept: the peer closed the connection after 0 of 80 bytes "
            f"\\(it is not node {OTHER.public_key.hex()}, or it does not admit us\\)",
        ):
            await connect(*await open_to(port), CLIENT, OTHER.public_key)
        with pytest.raises(
            HandshakeFailed,
            match=f"M3 client auth: the box does not open \\(the client did not dial node key {SERVER.public_key.hex()}",
        ):
            await accepted


async def test_a_blocked_client_is_refused_before_the_server_proves_itself() -> None:
    async with accepting(admit=Admit(block=frozenset({CLIENT.public_key.hex()}))) as (port, accepted):
        with pytest.raises(HandshakeFailed, match="M4 server accept: the peer closed the connection after 0 of 80"):
            await connect(*await open_to(port), CLIENT, SERVER.public_key)
        with pytest.raises(HandshakeFailed, match=f"M3 client auth: node {CLIENT.public_key.hex()} is not admitted"):
            await accepted
    assert Admit(allow=frozenset({CLIENT.public_key.hex()}))(CLIENT.public_key)
    assert not Admit(allow=frozenset({CLIENT.public_key.hex()}))(SERVER.public_key)


@pytest.mark.parametrize(
    ("sent", "error"),
    [
        (b"", "M1 client hello: the peer closed the connection after 0 of 64 bytes"),
        (bytes(30), "M1 client hello: the peer closed the connection after 30 of 64 bytes"),
        (bytes(range(64)), "M1 client hello: the hello is not for our network key"),
    ],
)
async def test_a_truncated_or_garbage_client_hello(sent: bytes, error: str) -> None:
    async with accepting() as (port, accepted):
        _, writer = await open_to(port)
        writer.write(sent)
        writer.write_eof()
        with pytest.raises(HandshakeFailed, match=error):
            await accepted
        writer.close()


@pytest.mark.parametrize(
    ("auth", "error"),
    [
        (bytes(112), "M3 client auth: the box does not open"),
        (bytes(50), "M3 client auth: the peer closed the connection after 50 of 112 bytes"),
    ],
)
async def test_a_truncated_or_garbage_client_auth(auth: bytes, error: str) -> None:
    async with accepting() as (port, accepted):
        reader, writer = await open_to(port)
        handshake = ClientHandshake(DEFAULT_NETWORK_KEY, CLIENT, SERVER.public_key)
        writer.write(handshake.hello())
        handshake.read_hello(await reader.readexactly(64))  # positive control: the hellos were good
        writer.write(auth)
        writer.write_eof()
        with pytest.raises(HandshakeFailed, match=error):
            await accepted
        writer.close()


async def _fake_server(answer: Callable[[ServerHandshake], bytes]) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handshake = ServerHandshake(DEFAULT_NETWORK_KEY, SERVER)
        handshake.read_hello(await reader.readexactly(64))
        writer.write(answer(handshake))
        writer.write_eof()
        await writer.drain()
        await reader.read()
        writer.close()

    return handle


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (lambda h: h.hello()[:40], "M2 server hello: the peer closed the connection after 40 of 64 bytes"),
        (lambda h: bytes(64), "M2 server hello: the hello is not for our network key"),
        (lambda h: h.hello() + bytes(80), "M4 server accept: the box does not open \\(the server does not hold node"),
        (lambda h: h.hello() + bytes(10), "M4 server accept: the peer closed the connection after 10 of 80 bytes"),
    ],
)
async def test_a_truncated_or_garbage_server_answer(answer: Callable[[ServerHandshake], bytes], error: str) -> None:
    async with server(await _fake_server(answer)) as port:
        with pytest.raises(HandshakeFailed, match=error):
            await connect(*await open_to(port), CLIENT, SERVER.public_key)


async def test_a_silent_peer_times_out_with_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "HANDSHAKE_TIMEOUT", 0.3)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    async with server(silent) as port:
        with pytest.raises(HandshakeFailed, match=f"node {SERVER.public_key.hex()} did not complete the handshake"):
            await connect(*await open_to(port), CLIENT, SERVER.public_key)
    async with accepting() as (port, accepted):
        _, writer = await open_to(port)  # connects, says nothing
        with pytest.raises(HandshakeFailed, match=r"the client did not complete the handshake in 0\.3s"):
            await accepted
        writer.close()


async def _raw_client(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, SessionKeys]:
    """A client that completes the handshake by hand, so the test holds the keys to forge frames with."""
    reader, writer = await open_to(port)
    handshake = ClientHandshake(DEFAULT_NETWORK_KEY, CLIENT, SERVER.public_key)
    writer.write(handshake.hello())
    handshake.read_hello(await reader.readexactly(64))
    writer.write(handshake.auth())
    keys = handshake.read_accept(await reader.readexactly(80))
    return reader, writer, keys


def _frame(keys: SessionKeys, length: int, body: bytes) -> bytes:
    box = nacl.secret.SecretBox(keys.encrypt_key)
    nonce = keys.encrypt_nonce
    sealed = box.encrypt(body, (int.from_bytes(nonce, "big") + 1).to_bytes(24, "big")).ciphertext
    return box.encrypt(struct.pack(">H", length) + sealed[:16], nonce).ciphertext + sealed[16:]


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda k: _frame(k, 5, b"hello"), None),  # positive control: a well-formed frame is read
        (lambda k: _frame(k, 5, b"hello")[:20], "connection to [0-9a-f]{64} ended"),
        (lambda k: _frame(k, 5, b"hello")[:36], "connection to [0-9a-f]{64} ended within a frame"),
        (lambda k: bytes(34 + 5), "frame header from [0-9a-f]{64} does not authenticate"),
        (lambda k: _frame(k, 5, b"hello")[:-1] + b"?", "frame body from [0-9a-f]{64} does not authenticate"),
        (lambda k: _frame(k, MAX_FRAME + 1, bytes(MAX_FRAME + 1)), "announces 4097 bytes, at most 4096"),
    ],
)
async def test_truncated_forged_and_oversized_frames_close_the_stream(
    make: Callable[[SessionKeys], bytes], error: str | None
) -> None:
    async with accepting() as (port, accepted):
        _, writer, keys = await _raw_client(port)
        remote = await accepted
        writer.write(make(keys))
        writer.write_eof()
        if error is None:
            assert await remote.receive() == b"hello"
        else:
            with pytest.raises(StreamClosed, match=error):
                await remote.receive()
        await remote.close()
        writer.close()


async def test_messages_longer_than_a_frame_and_the_receivers_bound() -> None:
    async with accepting() as (port, accepted):
        client = await connect(*await open_to(port), CLIENT, SERVER.public_key)
        remote = await accepted
        for size in (0, 1, 4091, 4092, 4093, 300_000):  # one frame, exactly one frame, two, many
            message = bytes(range(256)) * (size // 256) + bytes(size % 256)
            await client.send_message(message)
            assert await remote.receive_message(300_000) == message
        await client.send_message(bytes(300_001))
        with pytest.raises(
            MessageTooLarge, match=r"message of 300001 bytes from [0-9a-f]{64}; at most 300000 are taken"
        ):
            await remote.receive_message(300_000)
        await client.close()
        await remote.close()
