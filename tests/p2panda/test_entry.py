"""Entries: vectors re-signed byte-for-byte, every check E1–E13 failing once, chains and mutations."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2panda import Hash, KeyPair, P2PandaError
from p2panda.entry import (
    EmptyEntry,
    Entry,
    EntryTooLarge,
    IdenticalLinks,
    InvalidAuthor,
    InvalidLinks,
    InvalidLogId,
    InvalidPayloadHash,
    InvalidPayloadSize,
    InvalidSeqNum,
    InvalidSignature,
    InvalidSignatureLength,
    LinkArgumentError,
    PayloadMismatch,
    UnsupportedTag,
    decode_entry,
    lipmaa,
    sign_entry,
    verify_payload,
)
from p2panda.entry.encode import unsigned_entry_bytes
from p2panda.varu64 import encode_varu64

from .strategies import key_pairs, mutate

KP = KeyPair.from_private_key(bytes(range(32)))
PAYLOAD = b"\x84\x01\x00payload"


def build_chain(kp: KeyPair, length: int, log_id: int = 0) -> list[bytes]:
    entries: list[bytes] = []
    hashes: list[Hash] = []
    for seq in range(1, length + 1):
        backlink = hashes[seq - 2] if seq > 1 else None
        target = lipmaa(seq)
        skiplink = hashes[target - 1] if seq > 1 and target != seq - 1 else None
        raw = sign_entry(
            kp, log_id=log_id, seq_num=seq, payload=PAYLOAD + bytes([seq % 256]), backlink=backlink, skiplink=skiplink
        )
        entries.append(raw)
        hashes.append(Hash.of(raw))
    return entries


def forge(seq_num: int, backlink: Hash | None, skiplink: Hash | None, *, log_id: int = 0, tail: bytes = b"") -> bytes:
    """Sign arbitrary link combinations, bypassing sign_entry's argument checks."""
    unsigned = unsigned_entry_bytes(
        KP.public_key.to_bytes(), log_id, seq_num, len(PAYLOAD), Hash.of(PAYLOAD), backlink, skiplink
    )
    return unsigned + KP.sign(unsigned) + tail


def test_vectors_resign_byte_for_byte(vectors: dict[str, Any]) -> None:
    for case in vectors["entries"]:
        kp = KeyPair.from_private_key(bytes.fromhex(case["private_key"]))
        payload = bytes.fromhex(case.get("operation") or case["payload"])
        raw = sign_entry(
            kp, log_id=case["log_id"], seq_num=case["seq_num"], payload=payload, backlink=None, skiplink=None
        )
        assert raw.hex() == case["entry"], case["name"]
        entry = decode_entry(raw)
        assert entry.hash.hex() == case["entry_hash"]
        assert entry.public_key.hex() == case["public_key"]
        assert (entry.log_id, entry.seq_num) == (case["log_id"], case["seq_num"])
        assert entry.backlink is None and entry.skiplink is None
        assert entry.payload_size == len(payload)
        assert entry.payload_hash == Hash.of(payload)
        assert entry.raw == raw and entry.signature == raw[-64:]
        verify_payload(entry, payload)


def test_node_flow_entries_decode_and_link(vectors: dict[str, Any]) -> None:
    flow = vectors["node_flow"]
    kp = KeyPair.from_private_key(bytes.fromhex(flow["private_key"]))
    previous: dict[int, Hash] = {}
    for step in flow["steps"]:
        payload = bytes.fromhex(step["operation"])
        backlink = previous.get(step["log_id"]) if step["seq_num"] > 1 else None
        raw = sign_entry(
            kp, log_id=step["log_id"], seq_num=step["seq_num"], payload=payload, backlink=backlink, skiplink=None
        )
        assert raw.hex() == step["entry"]
        entry = decode_entry(raw)
        assert entry.hash.hex() == step["entry_hash"]
        assert entry.backlink == backlink
        previous[step["log_id"]] = entry.hash


def test_e1_empty() -> None:
    with pytest.raises(EmptyEntry):
        decode_entry(b"")


def test_e2_tag() -> None:
    raw = sign_entry(KP, log_id=0, seq_num=1, payload=PAYLOAD, backlink=None, skiplink=None)
    with pytest.raises(UnsupportedTag, match="0x01"):
        decode_entry(b"\x01" + raw[1:])


def test_e3_author_not_a_point() -> None:
    raw = sign_entry(KP, log_id=0, seq_num=1, payload=PAYLOAD, backlink=None, skiplink=None)
    with pytest.raises(InvalidAuthor, match="0" * 64):
        decode_entry(b"\x00" + bytes(32) + raw[33:])
    with pytest.raises(InvalidAuthor, match="truncated"):
        decode_entry(raw[:20])


def test_e4_log_id_non_canonical() -> None:
    raw = sign_entry(KP, log_id=5, seq_num=1, payload=PAYLOAD, backlink=None, skiplink=None)
    with pytest.raises(InvalidLogId, match="shortest"):
        decode_entry(raw[:33] + b"\xf8\x05" + raw[34:])


def test_e5_seq_num_zero_and_missing() -> None:
    raw = sign_entry(KP, log_id=0, seq_num=1, payload=PAYLOAD, backlink=None, skiplink=None)
    with pytest.raises(InvalidSeqNum, match="at least 1"):
        decode_entry(raw[:34] + b"\x00" + raw[35:])
    with pytest.raises(InvalidSeqNum, match="missing"):
        decode_entry(raw[:34])


def test_e6_links_missing_or_malformed() -> None:
    chain = build_chain(KP, 4)
    with pytest.raises(InvalidLinks, match="backlink of seq num 2"):
        decode_entry(forge(2, None, None))
    with pytest.raises(InvalidLinks, match="skiplink of seq num 4"):
        # seq 4 needs skiplink + backlink; give only one hash and a short tail
        decode_entry(chain[3][: 35 + 20])
    bad = bytearray(chain[1])
    bad[35] = 0x07  # backlink type byte
    with pytest.raises(InvalidLinks, match="must start with 0x00"):
        decode_entry(bytes(bad))


def test_e7_identical_links() -> None:
    h = Hash.of(b"x")
    with pytest.raises(IdenticalLinks, match="identical at seq num 4"):
        decode_entry(forge(4, h, h))


def test_e8_payload_size_truncated() -> None:
    raw = sign_entry(KP, log_id=0, seq_num=1, payload=b"x" * 300, backlink=None, skiplink=None)
    with pytest.raises(InvalidPayloadSize):
        decode_entry(raw[:35] + b"\xf9")


def test_e9_payload_hash_malformed() -> None:
    raw = bytearray(sign_entry(KP, log_id=0, seq_num=1, payload=PAYLOAD, backlink=None, skiplink=None))
    raw[36] = 0x01
    with pytest.raises(InvalidPayloadHash):
        decode_entry(bytes(raw))


def test_e10_signature_truncated_or_trailing() -> None:
    raw = sign_entry(KP, log_id=0, seq_num=1, payload=PAYLOAD, backlink=None, skiplink=None)
    with pytest.raises(InvalidSignatureLength, match="truncated"):
        decode_entry(raw[:-1])
    with pytest.raises(InvalidSignatureLength, match="1 trailing"):
        decode_entry(raw + b"\x00")


def test_e11_too_large() -> None:
    with pytest.raises(EntryTooLarge, match="227 bytes"):
        decode_entry(b"\x00" * 227)


def test_largest_possible_entry_is_accepted() -> None:
    log_id = seq = 2**64 - 1
    unsigned = unsigned_entry_bytes(
        KP.public_key.to_bytes(), log_id, seq, 2**64 - 1, Hash.of(b""), Hash.of(b"b"), Hash.of(b"s")
    )
    raw = unsigned + KP.sign(unsigned)
    assert len(raw) == 226
    assert decode_entry(raw).seq_num == seq


def test_e12_signature() -> None:
    raw = bytearray(sign_entry(KP, log_id=0, seq_num=1, payload=PAYLOAD, backlink=None, skiplink=None))
    raw[-1] ^= 0x01
    with pytest.raises(InvalidSignature, match=KP.public_key.hex()):
        decode_entry(bytes(raw))


def test_e13_payload_mismatch() -> None:
    entry = decode_entry(sign_entry(KP, log_id=0, seq_num=1, payload=PAYLOAD, backlink=None, skiplink=None))
    with pytest.raises(PayloadMismatch, match="bytes but entry"):
        verify_payload(entry, PAYLOAD + b"!")
    with pytest.raises(PayloadMismatch, match="payload hash"):
        verify_payload(entry, PAYLOAD[:-1] + b"?")


@pytest.mark.parametrize(
    "seq_num, backlink, skiplink, message",
    [
        (1, Hash.of(b"b"), None, "neither backlink nor skiplink"),
        (1, None, Hash.of(b"s"), "neither backlink nor skiplink"),
        (2, None, None, "backlink is required"),
        (3, Hash.of(b"b"), Hash.of(b"s"), "no skiplink is allowed"),
        (4, Hash.of(b"b"), None, "skiplink is required"),
        (4, Hash.of(b"b"), Hash.of(b"b"), "identical"),
        (0, None, None, "seq num must be"),
    ],
)
def test_sign_entry_checks_links(seq_num: int, backlink: Hash | None, skiplink: Hash | None, message: str) -> None:
    with pytest.raises(LinkArgumentError, match=message):
        sign_entry(KP, log_id=0, seq_num=seq_num, payload=PAYLOAD, backlink=backlink, skiplink=skiplink)


def test_chain_of_200_follows_lipmaa() -> None:
    chain = build_chain(KP, 200)
    decoded: list[Entry] = [decode_entry(raw) for raw in chain]
    for entry in decoded:
        assert entry.public_key == KP.public_key
        if entry.seq_num == 1:
            assert entry.backlink is None and entry.skiplink is None
            continue
        assert entry.backlink == decoded[entry.seq_num - 2].hash
        target = lipmaa(entry.seq_num)
        if target == entry.seq_num - 1:
            assert entry.skiplink is None
        else:
            assert entry.skiplink == decoded[target - 1].hash
    assert max(len(raw) for raw in chain) <= 226


@settings(max_examples=20)
@given(key_pairs, st.integers(min_value=1, max_value=60), st.integers(min_value=0, max_value=2**64 - 1))
def test_random_chains_round_trip(kp: KeyPair, length: int, log_id: int) -> None:
    for raw in build_chain(kp, length, log_id):
        entry = decode_entry(raw)
        assert entry.log_id == log_id
        assert entry.raw == raw


_MUTATION_BASES = [raw for raw in build_chain(KP, 13) if decode_entry(raw).seq_num in (1, 2, 4, 13)]


@settings(max_examples=400)
@given(st.sampled_from(_MUTATION_BASES), st.data())
def test_mutated_or_truncated_entries_are_rejected_with_our_errors(raw: bytes, data: st.DataObject) -> None:
    mutated = mutate(raw, data)
    try:
        entry = decode_entry(mutated)
    except P2PandaError:
        return
    assert entry.hash != Hash.of(raw)


def test_seq_num_and_log_id_use_varu64() -> None:
    raw = sign_entry(KP, log_id=434, seq_num=1, payload=PAYLOAD, backlink=None, skiplink=None)
    assert raw[33:36] == encode_varu64(434)
    assert decode_entry(raw).log_id == 434
