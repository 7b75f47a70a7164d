"""Hashes, varu64, lipmaa and identities against the shared vectors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2panda import Hash, KeyPair, PublicKey
from p2panda.entry import is_skiplink_required, lipmaa
from p2panda.hash import HashError
from p2panda.identity import InvalidPrivateKey, InvalidPublicKey
from p2panda.ids import DocumentViewId
from p2panda.varu64 import MAX_U64, VarU64Error, decode_varu64, encode_varu64


def test_hash_vectors(vectors: dict[str, Any]) -> None:
    for case in vectors["hashes"]:
        h = Hash.of(bytes.fromhex(case["input_hex"]))
        assert h.hex() == case["hash"]
        assert Hash.from_hex(case["hash"]) == h
        assert Hash(h.to_bytes()) == h


def test_document_view_hash_vector(vectors: dict[str, Any]) -> None:
    case = vectors["document_view_hash"]
    assert DocumentViewId.from_str(case["view_id"]).view_hash().hex() == case["hash"]


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"\x01\x20" + bytes(32), "must start with 0x00"),
        (b"\x00\x40" + bytes(32), "digest length 0x20"),
        (b"\x00\x20" + bytes(31), "34 bytes"),
        (b"\x00\x20" + bytes(33), "34 bytes"),
    ],
)
def test_hash_rejects_malformed_bytes(raw: bytes, message: str) -> None:
    with pytest.raises(HashError, match=message):
        Hash(raw)


@pytest.mark.parametrize("text", ["0020" + "AB" * 32, "0020" + "zz" * 32, "0020", 5])
def test_hash_rejects_malformed_hex(text: Any) -> None:
    with pytest.raises(HashError):
        Hash.from_hex(text)


def test_varu64_vectors(vectors: dict[str, Any]) -> None:
    for value, hex_ in vectors["varu64"].items():
        assert encode_varu64(int(value)).hex() == hex_
        assert decode_varu64(bytes.fromhex(hex_)) == (int(value), len(hex_) // 2)


@pytest.mark.parametrize("hex_", ["f800", "f8f7", "f900ff", "fa0000ffff", "fb00ffffff"])
def test_varu64_rejects_non_canonical(hex_: str) -> None:
    with pytest.raises(VarU64Error, match="shortest form"):
        decode_varu64(bytes.fromhex(hex_))


@pytest.mark.parametrize("hex_", ["", "f8", "f901", "ff00000000000000"])
def test_varu64_rejects_truncated(hex_: str) -> None:
    with pytest.raises(VarU64Error):
        decode_varu64(bytes.fromhex(hex_))


@given(st.integers(min_value=0, max_value=MAX_U64))
def test_varu64_round_trip(value: int) -> None:
    encoded = encode_varu64(value)
    assert decode_varu64(encoded) == (value, len(encoded))


def test_lipmaa_vectors(vectors: dict[str, Any]) -> None:
    for n, expected in vectors["lipmaa"].items():
        assert lipmaa(int(n)) == expected


def test_skiplink_required_up_to_40() -> None:
    required = [n for n in range(1, 41) if is_skiplink_required(n)]
    assert required == [4, 8, 12, 13, 17, 21, 25, 26, 30, 34, 38, 39, 40]


def test_key_pair_from_vector_seed(vectors: dict[str, Any]) -> None:
    for case in vectors["entries"]:
        kp = KeyPair.from_private_key(bytes.fromhex(case["private_key"]))
        assert kp.public_key.hex() == case["public_key"]
        assert kp.private_key().hex() == case["private_key"]


def test_signatures_are_deterministic_and_verify() -> None:
    kp = KeyPair.from_private_key(bytes(range(32)))
    sig = kp.sign(b"panda")
    assert sig == kp.sign(b"panda") and len(sig) == 64
    assert kp.public_key.verify(b"panda", sig)
    assert not kp.public_key.verify(b"pandas", sig)
    assert "KeyPair(" in repr(kp) and kp.private_key().hex() not in repr(kp)


def test_generated_keys_differ() -> None:
    assert KeyPair.generate().public_key != KeyPair.generate().public_key


@pytest.mark.parametrize(
    "raw",
    [
        bytes(32),  # identity point: small order
        bytes([1]) + bytes(31),  # the neutral element
        bytes([0xFF] * 32),  # non-canonical encoding
        bytes(31),
    ],
)
def test_public_key_rejects_invalid_points(raw: bytes) -> None:
    with pytest.raises(InvalidPublicKey):
        PublicKey(raw)


def test_private_key_must_be_32_bytes() -> None:
    with pytest.raises(InvalidPrivateKey, match="32-byte seed"):
        KeyPair.from_private_key(bytes(31))
