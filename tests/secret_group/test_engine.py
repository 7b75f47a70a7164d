"""The sans-IO engine with real OpenMLS members: both modes, and every G check refusing bad input with its
own error and no state change (the refused step leaves no MLS journal; the next valid step still works)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from keygroups import Level
from p2panda.identity import KeyPair
from secret_group.documents import CommitDoc, EnvelopeDoc, GroupDoc, KeyPackageDoc, Mode
from secret_group.engine import Engine, GroupRecord, PlannedCommit
from secret_group.errors import (
    ForeignKeyPackage,
    HistoryUnavailable,
    MalformedDocument,
    NotAuthorised,
    ReplayedWelcome,
    SenderMismatch,
    TamperedCiphertext,
    UnknownParent,
)
from secret_group.mls import InvalidMessage, MalformedMessage, MlsMember

GROUP_ID = "0020" + "ab" * 32
OWNER = "0020" + "cd" * 32


def _id(n: int) -> str:
    return "0020" + f"{n:064x}"


class Party:
    def __init__(self) -> None:
        self.key_pair = KeyPair.generate()
        self.member = MlsMember(self.key_pair.private_key())
        self.engine = Engine(self.member)
        self.key = self.key_pair.public_key.hex()
        self.record: GroupRecord | None = None

    def key_package(self, n: int, author: str | None = None) -> KeyPackageDoc:
        return KeyPackageDoc(_id(n), author or self.key, self.member.key_package(), False)

    def settle(self) -> None:
        self.member.take_changes()


def _commit_doc(planned: PlannedCommit, parent: str, author: str, doc_id: str) -> CommitDoc:
    f = planned.fields
    return CommitDoc(
        doc_id,
        author,
        GROUP_ID,
        parent,
        int(f["epoch"]),  # type: ignore[call-overload]
        bytes(f["commit"]),  # type: ignore[call-overload]
        bytes(f["welcome"]) or None,  # type: ignore[call-overload]
        tuple(str(f["added"]).split()) if f["added"] else (),
        (),
        (),
        bytes(f["handover"]) or None,  # type: ignore[call-overload]
    )


def _group(mode: Mode) -> tuple[Party, Party, CommitDoc]:
    """Alice creates a group and adds Bob; Bob joins. Returns the commit document."""
    alice, bob = Party(), Party()
    alice.record = alice.engine.create(GroupDoc(GROUP_ID, alice.key, OWNER, mode), "team")
    planned = alice.engine.commit(alice.record, [bob.key_package(1)], [], ())
    doc = _commit_doc(planned, GROUP_ID, alice.key, _id(100))
    alice.record = replace(planned.record, tip=doc.id)
    alice.settle()
    bob.record = bob.engine.join(GroupDoc(GROUP_ID, alice.key, OWNER, mode), doc)
    bob.settle()
    return alice, bob, doc


LEVELS = {}


def _levels(*managers: Party, writers: tuple[Party, ...] = ()) -> dict[str, Level]:
    return {p.key: Level.MANAGE for p in managers} | {p.key: Level.WRITE for p in writers}


def _envelope(sender: Party, plaintext: bytes, n: int, author: str | None = None) -> EnvelopeDoc:
    assert sender.record is not None
    epoch, ciphertext = sender.engine.seal(sender.record, plaintext)
    sender.settle()
    return EnvelopeDoc(_id(n), author or sender.key, GROUP_ID, epoch, ciphertext)


@pytest.mark.parametrize("mode", [Mode.RATCHET, Mode.HISTORY])
def test_messages_both_ways_and_the_joiner_learns_the_name(mode: Mode) -> None:
    alice, bob, _ = _group(mode)
    assert bob.record is not None and alice.record is not None
    assert bob.record.name == "team" and bob.record.tip == _id(100)
    levels = _levels(alice, writers=(bob,))
    assert bob.engine.open(bob.record, _envelope(alice, b"hello", 1), levels).plaintext == b"hello"
    assert alice.engine.open(alice.record, _envelope(bob, b"hi", 2), levels).plaintext == b"hi"


def _refused_without_trace(party: Party, call: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        call()  # type: ignore[operator]
    party.member.discard_changes()
    assert party.member.take_changes() == []


def test_g4_an_mls_sender_who_is_not_the_entry_author_is_refused() -> None:
    alice, bob, _ = _group(Mode.RATCHET)
    carol_key = KeyPair.generate().public_key.hex()
    assert bob.record is not None
    levels = _levels(alice, writers=(bob,)) | {carol_key: Level.WRITE}
    forged = _envelope(alice, b"from alice", 1, author=carol_key)
    epoch_before = bob.engine.mls(bob.record).epoch
    with pytest.raises(SenderMismatch, match=carol_key):
        bob.engine.open(bob.record, forged, levels)
    bob.member.discard_changes()
    assert bob.engine.mls(bob.record).epoch == epoch_before


def test_tampered_ciphertext_is_refused_and_the_next_message_still_opens() -> None:
    alice, bob, _ = _group(Mode.RATCHET)
    assert bob.record is not None
    levels = _levels(alice, writers=(bob,))
    good = _envelope(alice, b"second", 2)
    bad = _envelope(alice, b"first", 1)
    flipped = bytearray(bad.ciphertext)
    flipped[-5] ^= 1
    _refused_without_trace(
        bob, lambda: bob.engine.open(bob.record, replace(bad, ciphertext=bytes(flipped)), levels), InvalidMessage
    )
    _refused_without_trace(
        bob, lambda: bob.engine.open(bob.record, replace(bad, ciphertext=b"\x00garbage"), levels), MalformedMessage
    )
    assert bob.engine.open(bob.record, good, levels).plaintext == b"second"


def test_history_envelopes_bind_author_and_epoch() -> None:
    alice, bob, _ = _group(Mode.HISTORY)
    assert bob.record is not None
    levels = _levels(alice, writers=(bob,))
    env = _envelope(alice, b"doc", 1)
    for bad in (replace(env, author=bob.key), replace(env, ciphertext=env.ciphertext[:-1] + b"\x00")):
        _refused_without_trace(bob, lambda bad=bad: bob.engine.open(bob.record, bad, levels), TamperedCiphertext)
    _refused_without_trace(bob, lambda: bob.engine.open(bob.record, replace(env, epoch=7), levels), HistoryUnavailable)
    assert bob.engine.open(bob.record, env, levels).plaintext == b"doc"


def test_g5_an_author_below_write_is_refused() -> None:
    alice, bob, _ = _group(Mode.RATCHET)
    assert bob.record is not None
    env = _envelope(alice, b"x", 1)
    _refused_without_trace(bob, lambda: bob.engine.open(bob.record, env, {alice.key: Level.READ}), NotAuthorised)
    assert bob.engine.open(bob.record, env, _levels(alice)).plaintext == b"x"


def test_g3_a_commit_by_a_non_manager_and_g2_an_unknown_parent_are_refused() -> None:
    alice, bob, _ = _group(Mode.RATCHET)
    carol = Party()
    assert alice.record is not None and bob.record is not None
    planned = alice.engine.commit(alice.record, [carol.key_package(2)], [], ())
    alice.settle()
    doc = _commit_doc(planned, alice.record.tip, alice.key, _id(101))
    _refused_without_trace(bob, lambda: bob.engine.apply(bob.record, doc, _levels(writers=(alice,))), NotAuthorised)
    _refused_without_trace(
        bob, lambda: bob.engine.apply(bob.record, replace(doc, parent=_id(55)), _levels(alice)), UnknownParent
    )
    applied = bob.engine.apply(bob.record, doc, _levels(alice))
    assert applied.added == (carol.key,) and applied.record.tip == doc.id


def test_g7_a_replayed_welcome_is_refused() -> None:
    alice, bob, doc = _group(Mode.RATCHET)
    group = GroupDoc(GROUP_ID, alice.key, OWNER, Mode.RATCHET)
    _refused_without_trace(bob, lambda: bob.engine.join(group, doc), ReplayedWelcome)


def test_g8_a_key_package_of_another_identity_is_refused() -> None:
    alice, bob, _ = _group(Mode.RATCHET)
    mallory = Party()
    assert alice.record is not None
    # Mallory's package published under Bob's name: the identity inside is Mallory's.
    forged = mallory.key_package(3, author=bob.key)
    with pytest.raises(ForeignKeyPackage):
        alice.engine.check_key_package(forged, mallory.key)
    _refused_without_trace(alice, lambda: alice.engine.commit(alice.record, [forged], [], ()), ForeignKeyPackage)
    assert alice.engine.mls(alice.record).epoch == 1


def test_removed_member_reads_nothing_new_and_history_secret_rotates() -> None:
    alice, bob, _ = _group(Mode.HISTORY)
    assert alice.record is not None and bob.record is not None
    planned = alice.engine.commit(alice.record, [], [bob.key], ())
    alice.settle()
    assert planned.removed == (bob.key,)
    alice.record = replace(planned.record, tip=_id(102))
    assert max(alice.record.secrets) == 2 and len(alice.record.secrets) == 2
    applied = bob.engine.apply(bob.record, _commit_doc(planned, bob.record.tip, alice.key, _id(102)), _levels(alice))
    bob.settle()
    assert not applied.record.active
    env = _envelope(alice, b"after", 5)
    _refused_without_trace(bob, lambda: bob.engine.open(applied.record, env, _levels(alice)), HistoryUnavailable)


def test_malformed_commit_fields_are_refused_by_name() -> None:
    from p2panda.ids import DocumentId
    from p2panda.operation.value import Relation

    good = {
        "group": Relation(DocumentId.from_hex(GROUP_ID)),
        "parent": GROUP_ID,
        "epoch": 0,
        "commit": b"c",
        "welcome": b"",
        "added": "",
        "key_packages": "",
        "key_group_tips": "",
        "handover": b"",
    }
    assert CommitDoc.parse(_id(1), "k", good).parent == GROUP_ID
    for name, value in [
        ("parent", "zz"),
        ("epoch", -1),
        ("added", "nothex"),
        ("key_packages", _id(2) + " " + _id(2)),
        ("welcome", b"w"),
        ("group", "not a relation"),
    ]:
        with pytest.raises(MalformedDocument, match=name if name != "welcome" else "welcome"):
            CommitDoc.parse(_id(1), "k", good | {name: value})
