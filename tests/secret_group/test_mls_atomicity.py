"""Failed operations leave no journal and no changed state; a lost journal restores cleanly."""

from __future__ import annotations

import os

import pytest

from p2panda import KeyPair
from secret_group import _openmls
from secret_group.mls import (
    InternalError,
    InvalidKeyPackage,
    InvalidMessage,
    MalformedMessage,
    MlsGroup,
    MlsMember,
    NoMatchingKeyPackage,
    NotAMember,
    RemovedSender,
    UnknownGroup,
    WrongEpoch,
)

GROUP = b"atomic"


def fresh(seed: bytes | None = None) -> MlsMember:
    return MlsMember(seed or os.urandom(32))


def restore(member: MlsMember, seed: bytes, stored: dict[bytes, bytes]) -> MlsMember:
    """Apply the member's journal to `stored` (the 'database') and rebuild from it."""
    for key, value in member.take_changes():
        if value is None:
            stored.pop(key, None)
        else:
            stored[key] = value
    return MlsMember(seed, list(stored.items()))


def three_members() -> tuple[MlsGroup, MlsGroup, MlsGroup, list[MlsMember]]:
    a, b, c = fresh(), fresh(), fresh()
    ga = a.create_group(GROUP)
    commit = ga.add([b.key_package(), c.key_package()])
    ga.merge_pending_commit()
    assert commit.welcome is not None
    gb, gc = b.join(commit.welcome), c.join(commit.welcome)
    for m in (a, b, c):
        m.take_changes()
    return ga, gb, gc, [a, b, c]


def assert_no_journal(member: MlsMember, what: str) -> None:
    assert member.take_changes() == [], f"{what} left journal entries"


def tamper(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


def test_tampered_commit_is_rejected_without_changes_then_real_commit_processes() -> None:
    ga, gb, _, (_, b, _) = three_members()
    commit = ga.self_update()
    ga.merge_pending_commit()
    with pytest.raises(InvalidMessage):
        gb.process(tamper(commit.commit))
    assert_no_journal(b, "tampered")
    assert gb.process(commit.commit).kind == "commit"
    assert gb.epoch_authenticator() == ga.epoch_authenticator()


def test_commit_for_the_wrong_epoch() -> None:
    ga, gb, _, (_, b, _) = three_members()
    first = ga.self_update()
    ga.merge_pending_commit()
    second = ga.self_update()
    ga.merge_pending_commit()
    with pytest.raises(WrongEpoch):
        gb.process(second.commit)  # B is still in the epoch before `first`
    assert_no_journal(b, "wrong epoch")
    gb.process(first.commit)
    gb.process(second.commit)
    assert gb.epoch_authenticator() == ga.epoch_authenticator()
    b.take_changes()
    with pytest.raises(WrongEpoch):
        gb.process(first.commit)  # replay of an old commit
    assert_no_journal(b, "replay")


@pytest.mark.parametrize("garbage", [b"", b"\x00", os.urandom(64), b"\x00\x01\x00\x05" + os.urandom(200)])
def test_garbage_bytes(garbage: bytes) -> None:
    _, gb, _, (_, b, _) = three_members()
    with pytest.raises(MalformedMessage):
        gb.process(garbage)
    assert_no_journal(b, "garbage")


def test_message_from_a_removed_member_is_refused() -> None:
    c_seed = os.urandom(32)
    a, b, c = fresh(), fresh(), MlsMember(c_seed)
    ga = a.create_group(GROUP)
    commit = ga.add([b.key_package(), c.key_package()])
    ga.merge_pending_commit()
    assert commit.welcome is not None
    gb = b.join(commit.welcome)
    c.join(commit.welcome)
    stored_c: dict[bytes, bytes] = {}
    c_old = restore(c, c_seed, stored_c)  # C keeps a copy of its state before the removal
    removal = ga.remove([c.public_key])
    ga.merge_pending_commit()
    gb.process(removal.commit)
    b.take_changes()
    old_group = c_old.load_group(GROUP)
    assert old_group is not None
    late = old_group.encrypt(b"I was removed but still talk")
    with pytest.raises(RemovedSender, match=c.public_key.hex()):
        gb.process(late)
    assert_no_journal(b, "removed sender")


def test_late_message_from_a_current_member_still_decrypts_after_a_commit() -> None:
    ga, gb, gc, _ = three_members()
    late = gc.encrypt(b"sent before the commit")
    commit = ga.self_update()
    ga.merge_pending_commit()
    gb.process(commit.commit)
    gc.process(commit.commit)
    result = gb.process(late)
    assert result.plaintext == b"sent before the commit" and result.epoch == gb.epoch - 1


def test_dropped_journal_restores_the_previous_state_and_the_operation_can_be_redone() -> None:
    seed = os.urandom(32)
    a, b = fresh(), MlsMember(seed)
    ga = a.create_group(GROUP)
    commit = ga.add([b.key_package()])
    ga.merge_pending_commit()
    assert commit.welcome is not None
    b.join(commit.welcome)
    stored: dict[bytes, bytes] = {}
    b = restore(b, seed, stored)
    gb = b.load_group(GROUP)
    assert gb is not None
    epoch = gb.epoch
    auth = gb.epoch_authenticator()

    update = ga.self_update()
    ga.merge_pending_commit()
    gb.process(update.commit)
    assert gb.epoch == epoch + 1
    # Crash before the journal is written: the stored state is the old one.
    b_again = MlsMember(seed, list(stored.items()))
    gb_again = b_again.load_group(GROUP)
    assert gb_again is not None
    assert gb_again.epoch == epoch and gb_again.epoch_authenticator() == auth
    gb_again.process(update.commit)
    assert gb_again.epoch_authenticator() == ga.epoch_authenticator()


def test_discard_changes_rolls_back_in_memory() -> None:
    ga, gb, _, (_, b, _) = three_members()
    epoch, auth = gb.epoch, gb.epoch_authenticator()
    gb.self_update()
    gb.merge_pending_commit()
    assert gb.epoch == epoch + 1
    b.discard_changes()
    assert gb.epoch == epoch and gb.epoch_authenticator() == auth and b.take_changes() == []
    assert ga.epoch == epoch


def test_failed_operations_on_the_committer_leave_nothing() -> None:
    ga, _, _, (a, _, _) = three_members()
    with pytest.raises(NotAMember):
        ga.remove([KeyPair.generate().public_key.to_bytes()])
    with pytest.raises(InvalidKeyPackage):
        ga.add([b"not a key package"])
    assert_no_journal(a, "bad input")


def test_unknown_group() -> None:
    member = fresh()
    assert member.load_group(b"nope") is None
    with pytest.raises(UnknownGroup):
        MlsGroup(member, b"nope").encrypt(b"x")


def test_panic_becomes_an_exception_and_changes_nothing() -> None:
    ga, _, _, (a, _, _) = three_members()
    with pytest.raises(InternalError, match="deliberate test panic"):
        _openmls._panic_for_test(a._inner)
    assert_no_journal(a, "panic")
    assert ga.encrypt(b"still works")


def test_credential_identity_is_the_p2panda_public_key() -> None:
    seeds = [os.urandom(32) for _ in range(3)]
    members = [MlsMember(s) for s in seeds]
    group = members[0].create_group(GROUP)
    commit = group.add([m.key_package() for m in members[1:]])
    group.merge_pending_commit()
    assert commit.welcome is not None
    expected = sorted(KeyPair.from_private_key(s).public_key.to_bytes() for s in seeds)
    assert sorted(group.members()) == expected
    for m, s in zip(members, seeds, strict=True):
        assert m.public_key == KeyPair.from_private_key(s).public_key.to_bytes()
    for m in members[1:]:
        assert sorted(m.join(commit.welcome).members()) == expected


def test_key_packages_are_single_use() -> None:
    a, b = fresh(), fresh()
    kp = b.key_package()
    first = a.create_group(b"g1").add([kp])
    second = fresh().create_group(b"g2").add([kp])
    assert first.welcome is not None and second.welcome is not None
    b.join(first.welcome)
    with pytest.raises(NoMatchingKeyPackage):
        b.join(second.welcome)


def test_export_secret_agrees_between_members() -> None:
    ga, gb, _, _ = three_members()
    assert ga.export_secret("p2panda document key", b"doc", 32) == gb.export_secret("p2panda document key", b"doc", 32)
    assert len(ga.export_secret("x", b"", 16)) == 16
