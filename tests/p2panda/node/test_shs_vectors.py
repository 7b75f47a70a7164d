"""The standard Secret Handshake byte for byte against the reference implementation's published vectors
(`vectors/README.md`): every handshake recorded there is replayed through `ClientHandshake` and
`ServerHandshake` with the recorded keys; every message must be the recorded bytes, every packet the
reference refused must be refused (S2, S4/S5), and the session keys must be the recorded box-stream keys.

The vectors record no box-stream nonces and no frames: those are checked against the box-stream spec
(nonces are hmac(K, ephemeral key)[:24], frames are a secretbox'ed header then the body) with the keys of
a recorded handshake, using libsodium directly, over a real socket pair.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from pathlib import Path
from typing import Any

import nacl.secret
import pytest

from p2panda import KeyPair
from p2panda.identity import PublicKey
from p2panda.node.shs import ClientHandshake, HandshakeFailed, ServerHandshake, SessionKeys
from p2panda.node.transport import BoxStream, StreamClosed

VECTORS: list[dict[str, Any]] = json.loads((Path(__file__).parent / "vectors/secret-handshake-data.json").read_text())


def _by_ephemeral(name: str) -> dict[str, dict[str, Any]]:
    """The vectors of one operation, by the local ephemeral key of the side that ran it (one each)."""
    out: dict[str, dict[str, Any]] = {}
    for vector in VECTORS:
        if vector["name"] == name:
            key = vector["args"][0]["local"]["kx_pk"]
            assert key not in out
            out[key] = vector
    return out


CHALLENGE = _by_ephemeral("createChallenge")
VERIFY = _by_ephemeral("verifyChallenge")
CLIENT_VERIFY = _by_ephemeral("clientVerifyChallenge")
CLIENT_AUTH = _by_ephemeral("clientCreateAuth")
SERVER_VERIFY = _by_ephemeral("serverVerifyAuth")
SERVER_ACCEPT = _by_ephemeral("serverCreateAccept")
CLIENT_ACCEPT = _by_ephemeral("clientVerifyAccept")
CLEAN = _by_ephemeral("clean")
# verifyChallenge is recorded for both sides (the client's clientVerifyChallenge calls it): the server's
# ephemeral keys are those with no clientVerifyChallenge.
SERVERS = sorted(k for k in VERIFY if k not in CLIENT_VERIFY)
CLIENTS = sorted(CLIENT_VERIFY)


def _key_pair(state: dict[str, Any]) -> KeyPair:
    secret = bytes.fromhex(state["local"]["secretKey"])  # libsodium's 64 bytes: seed || public key
    key_pair = KeyPair.from_private_key(secret[:32])
    assert key_pair.public_key.hex() == state["local"]["publicKey"] == secret[32:].hex()
    return key_pair


def _check_keys(keys: SessionKeys, ephemeral: str) -> None:
    state = CLEAN[ephemeral]["result"]
    assert keys.encrypt_key.hex() == state["encryptKey"]
    assert keys.decrypt_key.hex() == state["decryptKey"]
    assert keys.peer.hex() == state["remote"]["publicKey"]
    # Box-stream nonces (spec): hmac(K, the peer's ephemeral key)[:24] to send, our own to receive; the
    # vectors record those hmacs as the app_macs of the hellos.
    assert keys.encrypt_nonce.hex() == state["remote"]["app_mac"][:48]
    assert keys.decrypt_nonce.hex() == state["local"]["app_mac"][:48]


def test_the_vectors_hold_what_the_tests_below_replay() -> None:
    # Positive control on the data: a change of file or of the grouping above cannot make the tests vacuous.
    assert len(VECTORS) == 159
    assert (len(CLIENTS), len(SERVERS)) == (14, 16)
    assert sum(CLIENT_VERIFY[k]["result"] is None for k in CLIENTS) == 2
    assert sum(VERIFY[k]["result"] is None for k in SERVERS) == 2
    assert sum(v["result"] is None for v in SERVER_VERIFY.values()) == 1
    # Six complete handshakes, each seen from both sides, all reached by the replays below.
    assert len(CLIENT_ACCEPT) == len(SERVER_ACCEPT) == 6
    assert set(CLIENT_ACCEPT) <= set(CLIENT_AUTH) and set(SERVER_ACCEPT) <= set(SERVER_VERIFY)
    assert set(CLEAN) == set(CLIENT_ACCEPT) | set(SERVER_ACCEPT)


@pytest.mark.parametrize("ephemeral", CLIENTS)
def test_client_side_matches_the_reference(ephemeral: str) -> None:
    vector = CLIENT_VERIFY[ephemeral]
    state, server_hello = vector["args"]
    handshake = ClientHandshake(
        bytes.fromhex(state["app_key"]),
        _key_pair(state),
        PublicKey.from_hex(state["remote"]["publicKey"]),
        ephemeral=bytes.fromhex(state["local"]["kx_sk"]),
    )
    assert handshake.hello().hex() == CHALLENGE[ephemeral]["result"]  # M1
    if vector["result"] is None:  # the reference refused this server hello: so must we (S2)
        with pytest.raises(HandshakeFailed, match="M2 server hello: the hello is not for our network key"):
            handshake.read_hello(bytes.fromhex(server_hello))
        return
    handshake.read_hello(bytes.fromhex(server_hello))
    if ephemeral not in CLIENT_AUTH:
        return
    assert handshake.auth().hex() == CLIENT_AUTH[ephemeral]["result"]  # M3
    if ephemeral in CLIENT_ACCEPT:
        accept = CLIENT_ACCEPT[ephemeral]
        assert accept["result"] is not None
        _check_keys(handshake.read_accept(bytes.fromhex(accept["args"][1])), ephemeral)  # M4


@pytest.mark.parametrize("ephemeral", SERVERS)
def test_server_side_matches_the_reference(ephemeral: str) -> None:
    vector = VERIFY[ephemeral]
    state, client_hello = vector["args"]
    handshake = ServerHandshake(
        bytes.fromhex(state["app_key"]), _key_pair(state), ephemeral=bytes.fromhex(state["local"]["kx_sk"])
    )
    if vector["result"] is None:  # S2
        with pytest.raises(HandshakeFailed, match="M1 client hello: the hello is not for our network key"):
            handshake.read_hello(bytes.fromhex(client_hello))
        return
    handshake.read_hello(bytes.fromhex(client_hello))
    assert handshake.hello().hex() == CHALLENGE[ephemeral]["result"]  # M2
    if ephemeral not in SERVER_VERIFY:
        return
    auth = SERVER_VERIFY[ephemeral]
    if auth["result"] is None:  # S4: the client dialled another server key
        with pytest.raises(HandshakeFailed, match="M3 client auth: the box does not open"):
            handshake.read_auth(bytes.fromhex(auth["args"][1]))
        return
    client = handshake.read_auth(bytes.fromhex(auth["args"][1]))  # M3
    assert client.hex() == auth["result"]["remote"]["publicKey"]
    if ephemeral in SERVER_ACCEPT:
        assert handshake.accept().hex() == SERVER_ACCEPT[ephemeral]["result"]  # M4
        _check_keys(handshake.keys(), ephemeral)


def test_seed_to_key_pair_matches_the_reference() -> None:
    (vector,) = [v for v in VECTORS if v["name"] == "toKeys"][:1]
    key_pair = KeyPair.from_private_key(bytes.fromhex(vector["args"][0]))
    assert key_pair.public_key.hex() == vector["result"]["publicKey"]
    assert (key_pair.private_key() + key_pair.public_key.to_bytes()).hex() == vector["result"]["secretKey"]


def _recorded_server_keys() -> SessionKeys:
    ephemeral = next(k for k in SERVERS if k in SERVER_ACCEPT)
    state, client_hello = VERIFY[ephemeral]["args"]
    handshake = ServerHandshake(
        bytes.fromhex(state["app_key"]), _key_pair(state), ephemeral=bytes.fromhex(state["local"]["kx_sk"])
    )
    handshake.read_hello(bytes.fromhex(client_hello))
    handshake.read_auth(bytes.fromhex(SERVER_VERIFY[ephemeral]["args"][1]))
    return handshake.keys()


def _next(nonce: bytes) -> bytes:
    return (int.from_bytes(nonce, "big") + 1).to_bytes(24, "big")


async def test_box_stream_frames_are_the_spec_bytes() -> None:
    keys = _recorded_server_keys()
    box = nacl.secret.SecretBox(keys.encrypt_key)
    near, far = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=near)
    far_reader, far_writer = await asyncio.open_connection(sock=far)
    stream = BoxStream(reader, writer, keys)
    try:
        body = b"hello, box-stream"
        await stream.send(body)
        # The body is boxed with the nonce after the header's; the header carries the length and the tag.
        n0 = keys.encrypt_nonce
        sealed_body = box.encrypt(body, _next(n0)).ciphertext
        header = box.encrypt(struct.pack(">H", len(body)) + sealed_body[:16], n0).ciphertext
        assert await far_reader.readexactly(34 + len(body)) == header + sealed_body[16:]
        await stream.close()
        goodbye = box.encrypt(bytes(18), _next(_next(n0))).ciphertext
        assert await far_reader.readexactly(34) == goodbye
    finally:
        far_writer.close()


async def test_box_stream_reads_spec_frames_and_goodbye() -> None:
    keys = _recorded_server_keys()
    box = nacl.secret.SecretBox(keys.decrypt_key)  # the peer encrypts with our decryption key
    near, far = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=near)
    _, far_writer = await asyncio.open_connection(sock=far)
    stream = BoxStream(reader, writer, keys)
    n0 = keys.decrypt_nonce
    body = bytes(range(256)) * 16  # 4096 bytes: the largest body box-stream allows
    sealed_body = box.encrypt(body, _next(n0)).ciphertext
    far_writer.write(box.encrypt(struct.pack(">H", len(body)) + sealed_body[:16], n0).ciphertext + sealed_body[16:])
    far_writer.write(box.encrypt(bytes(18), _next(_next(n0))).ciphertext)
    await far_writer.drain()
    try:
        assert await stream.receive() == body
        with pytest.raises(StreamClosed, match="said goodbye"):
            await stream.receive()
    finally:
        far_writer.close()
        await stream.close()
