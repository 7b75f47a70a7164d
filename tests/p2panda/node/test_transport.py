"""Secret handshake and box-stream over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

import pytest

from p2panda import KeyPair
from p2panda.node.transport import (
    DEFAULT_NETWORK_KEY,
    Admit,
    BoxStream,
    HandshakeFailed,
    MessageTooLarge,
    StreamClosed,
    accept,
    connect,
)

SERVER, CLIENT = KeyPair.from_private_key(bytes([7]) * 32), KeyPair.from_private_key(bytes([8]) * 32)


@asynccontextmanager
async def server(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[int]:
    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()
        await srv.wait_closed()


async def test_handshake_then_frames_both_ways() -> None:
    accepted: asyncio.Future[BoxStream] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result(await accept(reader, writer, SERVER))

    async with server(handle) as port:
        client = await connect(*await asyncio.open_connection("127.0.0.1", port), CLIENT)
        remote = await accepted
        assert client.peer == SERVER.public_key and remote.peer == CLIENT.public_key
        for size in (1, 100, 65535):
            await client.send(bytes([size % 256]) * size)
            assert await remote.receive() == bytes([size % 256]) * size
        await remote.send(b"pong")
        assert await client.receive() == b"pong"
        with pytest.raises(ValueError):
            await client.send(bytes(65536))
        await client.close()
        with pytest.raises(StreamClosed, match="goodbye"):
            await remote.receive()
        await remote.close()


async def test_wrong_network_key_fails_on_both_sides() -> None:
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await accept(reader, writer, SERVER)
            outcome.set_result(None)
        except HandshakeFailed as exc:
            outcome.set_result(exc)
        writer.close()

    async with server(handle) as port:
        with pytest.raises(HandshakeFailed, match="H2"):
            await connect(*await asyncio.open_connection("127.0.0.1", port), CLIENT, bytes(32))
        failure = await outcome
        assert isinstance(failure, HandshakeFailed) and "not for this network" in str(failure)


async def test_blocked_and_unexpected_keys_are_refused() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(HandshakeFailed):
            await accept(reader, writer, SERVER, DEFAULT_NETWORK_KEY, Admit(block=frozenset({CLIENT.public_key.hex()})))
        writer.close()

    async with server(handle) as port:
        with pytest.raises(HandshakeFailed, match="H5"):
            await connect(*await asyncio.open_connection("127.0.0.1", port), CLIENT)
        with pytest.raises(HandshakeFailed, match="not"):
            await connect(*await asyncio.open_connection("127.0.0.1", port), CLIENT, expected=CLIENT.public_key)
    assert Admit(allow=frozenset({CLIENT.public_key.hex()}))(CLIENT.public_key)
    assert not Admit(allow=frozenset({CLIENT.public_key.hex()}))(SERVER.public_key)


async def test_a_tampered_frame_closes_the_stream() -> None:
    accepted: asyncio.Future[BoxStream] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result(await accept(reader, writer, SERVER))

    async with server(handle) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = await connect(reader, writer, CLIENT)
        remote = await accepted
        original = writer.write

        def flip(data: bytes | bytearray | memoryview) -> None:
            raw = bytearray(data)
            raw[-1] ^= 1
            original(bytes(raw))

        writer.write = flip  # type: ignore[method-assign]
        await client.send(b"hello")
        with pytest.raises(StreamClosed, match="does not authenticate"):
            await remote.receive()
        await remote.close()
        await client.close()


async def test_messages_longer_than_a_frame_and_the_receivers_bound() -> None:
    accepted: asyncio.Future[BoxStream] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result(await accept(reader, writer, SERVER))

    async with server(handle) as port:
        client = await connect(*await asyncio.open_connection("127.0.0.1", port), CLIENT)
        remote = await accepted
        for size in (0, 1, 65531, 65532, 65535, 300_000):  # one frame, exactly one frame, two, five
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
