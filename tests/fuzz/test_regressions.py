"""Every input a fuzz run found crashing, kept with the exact typed error its decoder now raises."""

from __future__ import annotations

import base64

import pytest

from p2panda.node.replication.messages import InvalidMessage, decode_message
from p2panda.node.transport import HandshakeFailed
from secret_group.engine import _parse_handover
from secret_group.errors import MalformedDocument
from tests.fuzz import adapters

ID = "0020" + "ab" * 32


def test_replication_message_whose_type_is_an_array() -> None:
    # R2: the type was looked up in a dict, and a list is not hashable (TypeError).
    frame = base64.b64decode("hIEAAQF0AAAaAG1hX2RlZmluaXRpb25fdjE=")
    with pytest.raises(InvalidMessage, match=r"unknown message type \[0\]"):
        decode_message(frame)


def test_handover_with_a_bignum_secret() -> None:
    # `bytes(n)` of a CBOR bignum tried to allocate n bytes (OverflowError; a smaller n is a MemoryError).
    content = base64.b64decode(
        "o2RuYW1lYW5ncmVtb3ZlZIGCeEBjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2RjZGNkY2Rj"
        "ZGNkY2RjZGNkAmdzZWNyZXRzgYIAwlggAAAAAAAA//////////8AAAAAAAAAAAAAAABkY2QCZwA="
    )
    with pytest.raises(MalformedDocument, match=r"has secrets \[\[0, 4113761393"):
        _parse_handover(ID, content)


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"\xa3dname`gsecrets\x81\x82\x00\x1a\x3b\x9a\xca\x00gremoved\x80", "secrets"),  # a 1 GB `bytes(n)`
        (b"\xa3dname`gsecrets\x81\x82\xf9\x7c\x00X \x00" + bytes(31) + b"gremoved\x80", "secrets"),  # epoch inf
        (b"\x83\x01\x02\x03", "is not a map"),
    ],
)
def test_handover_fields_must_have_their_exact_types(content: bytes, what: str) -> None:
    with pytest.raises(MalformedDocument, match=what):
        _parse_handover(ID, content)


def test_handshake_with_a_low_order_ephemeral_key() -> None:
    # A client hello (valid HMAC) carrying the point 1: libsodium's scalar multiplication refused it with a
    # bare nacl RuntimeError out of `accept`, killing the connection task with a traceback.
    with pytest.raises(HandshakeFailed, match=r"M1 client hello: key 0100* gives no shared secret"):
        adapters.server_handshake(b"\x01\x01" + bytes(31) + bytes(112))
