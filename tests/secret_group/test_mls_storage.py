"""The binding's journal storage: exact change sets, panics at every entry point, threads, group snapshots.

Checks (numbered as in the task of the binding):
1. `take_changes` returns exactly the keys whose stored value changed, and applying it reproduces the state;
   refused messages change nothing, in storage or in the loaded group.
2. A panic anywhere inside an operation (at each of its storage accesses in turn) raises InternalError (an
   MlsError, never PyO3's PanicException), leaves no journal and no changed state.
3. A member is usable from other threads, concurrently, and releases the GIL while it works.
4. `group_items` / `restore_group` roll a group back across epochs (rows keyed by epoch number included);
   bad snapshots raise InvalidSnapshot naming the value and change nothing.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable

import pytest

from secret_group import _openmls
from secret_group.mls import (
    InternalError,
    InvalidMessage,
    InvalidSnapshot,
    MlsError,
    MlsGroup,
    MlsMember,
    UnknownGroup,
)

GROUP = b"storage"


class Db:
    """A member persisted as a dict the way an application persists it in its database."""

    def __init__(self, seed: bytes | None = None) -> None:
        self.seed = seed or os.urandom(32)
        self.rows: dict[bytes, bytes] = {}
        self.member = MlsMember(self.seed)

    def save(self) -> list[tuple[bytes, bytes | None]]:
        changes = self.member.take_changes()
        for key, value in changes:
            if value is None:
                assert key in self.rows, f"journal deletes {key.hex()} which is not stored"
                del self.rows[key]
            else:
                assert self.rows.get(key) != value, f"journal rewrites {key.hex()} unchanged"
                self.rows[key] = value
        return changes

    def reload(self) -> MlsMember:
        return MlsMember(self.seed, list(self.rows.items()))


def group_of(member: MlsMember) -> MlsGroup:
    group = member.load_group(GROUP)
    assert group is not None
    return group


def trio() -> tuple[Db, Db, Db]:
    a, b, c = Db(), Db(), Db()
    ga = a.member.create_group(GROUP)
    commit = ga.add([b.member.key_package(), c.member.key_package()])
    ga.merge_pending_commit()
    assert commit.welcome is not None
    b.member.join(commit.welcome)
    c.member.join(commit.welcome)
    for db in (a, b, c):
        db.save()
    return a, b, c


def state(member: MlsMember) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    group = group_of(member)
    return group.epoch, group.epoch_authenticator(), member.group_items(GROUP)


# 1. Exact change sets ---------------------------------------------------------------------------------


def test_journal_is_exact_and_reproduces_the_state_across_commits_and_messages() -> None:
    a, b, _ = trio()
    ga, gb = group_of(a.member), group_of(b.member)
    for round_ in range(8):  # more commits than the 5 kept past epochs: old epochs' rows are deleted
        update = ga.self_update()
        ga.merge_pending_commit()
        gb.process(update.commit)
        message = ga.encrypt(f"message {round_}".encode())
        assert gb.process(message).plaintext == f"message {round_}".encode()
        a.save()
        b.save()
        for db in (a, b):
            assert state(db.reload()) == state(db.member)
    # A message changes only the message secrets row of the sender and of the receiver.
    gb.process(ga.encrypt(b"one more"))
    assert len(a.save()) == 1 and len(b.save()) == 1
    # Reading changes nothing.
    assert (gb.epoch, gb.members(), gb.is_active) and b.save() == []


def test_a_late_message_from_a_past_epoch_still_decrypts_after_reload() -> None:
    a, b, c = trio()
    ga, gb, gc = group_of(a.member), group_of(b.member), group_of(c.member)
    late = gc.encrypt(b"sent before two commits")
    for _ in range(2):
        update = ga.self_update()
        ga.merge_pending_commit()
        gb.process(update.commit)
    b.save()
    reloaded = Db(b.seed)
    reloaded.rows = dict(b.rows)
    reloaded.member = b.reload()
    result = group_of(reloaded.member).process(late)
    assert result.plaintext == b"sent before two commits" and result.epoch == gb.epoch - 2
    # Only that past epoch's secrets row changed, and the change persists: the key is used up.
    assert len(reloaded.save()) == 1
    with pytest.raises(InvalidMessage):
        group_of(reloaded.reload()).process(late)


def test_refused_messages_leave_the_loaded_group_as_stored() -> None:
    a, b, _ = trio()
    ga, gb = group_of(a.member), group_of(b.member)
    first = ga.encrypt(b"first")
    assert gb.process(first).plaintext == b"first"
    b.save()
    tampered = bytearray(ga.encrypt(b"second"))
    tampered[-3] ^= 1
    for bad in (first, bytes(tampered)):  # a replay (generation used up), a broken ciphertext
        with pytest.raises(InvalidMessage):
            gb.process(bad)
        assert b.save() == []
    assert state(b.member) == state(b.reload())
    assert gb.process(ga.encrypt(b"third")).plaintext == b"third"


# 2. Panics at every entry point ------------------------------------------------------------------------


Items = list[tuple[bytes, bytes]]
Operation = tuple[Callable[[], tuple[MlsMember, Items | None]], Callable[[MlsMember], object]]


def operations(a: Db, b: Db) -> dict[str, Operation]:
    """Each operation with a maker of the member to run it on and that member's group rows before: B freshly
    reloaded (cold cache, so that even reads go to storage), B after the commit for a late message, or
    for `join` the joiner itself (a failed join must leave it unchanged)."""
    ga = group_of(a.member)
    update = ga.self_update()
    ga.merge_pending_commit()
    message = ga.encrypt(b"hello")
    a.save()
    joiner = MlsMember(os.urandom(32))
    invite = group_of(b.member).add([joiner.key_package()])
    joiner.take_changes()
    b.member.discard_changes()
    assert invite.welcome is not None
    welcome = invite.welcome
    kp = MlsMember(os.urandom(32)).key_package()
    ops: dict[str, Callable[[MlsMember], object]] = {
        "process_commit": lambda m: group_of(m).process(update.commit),
        "encrypt": lambda m: group_of(m).encrypt(b"x"),
        "add": lambda m: group_of(m).add([kp]),
        "self_update": lambda m: group_of(m).self_update(),
        "remove": lambda m: group_of(m).remove([a.member.public_key]),
        "epoch": lambda m: group_of(m).epoch,
        "members": lambda m: group_of(m).members(),
        "export_secret": lambda m: group_of(m).export_secret("x", b"", 16),
        "group_items": lambda m: m.group_items(GROUP),
        "restore_group": lambda m: m.restore_group(GROUP, m.group_items(GROUP)),
        "key_package": lambda m: m.key_package(),
        "create_group": lambda m: m.create_group(b"another"),
        "load_group": lambda m: m.load_group(GROUP),
    }
    rows = b.reload().group_items(GROUP)
    result: dict[str, Operation] = {name: (lambda: (b.reload(), rows), op) for name, op in ops.items()}

    def after_commit() -> tuple[MlsMember, Items | None]:
        member = b.reload()
        group_of(member).process(update.commit)
        member.take_changes()
        return member, member.group_items(GROUP)

    result["late_message"] = (after_commit, lambda m: group_of(m).process(message))
    result["join"] = (lambda: (joiner, None), lambda m: m.join(welcome))
    return result


OPERATIONS = [
    "process_commit",
    "late_message",
    "encrypt",
    "add",
    "self_update",
    "remove",
    "epoch",
    "members",
    "export_secret",
    "group_items",
    "restore_group",
    "key_package",
    "create_group",
    "load_group",
    "join",
]


@pytest.mark.parametrize("name", OPERATIONS)
def test_a_panic_at_each_storage_access_raises_internal_error_and_changes_nothing(name: str) -> None:
    a, b, _ = trio()
    make_target, op = operations(a, b)[name]
    panics = 0
    for n in range(1000):
        target, before = make_target()
        _openmls._panic_at_storage_access(target._inner, n)
        try:
            op(target)
        except InternalError as exc:
            assert "deliberate test panic" in str(exc)
            assert target.take_changes() == [], f"{name}: panic at access {n} left journal entries"
            if before is not None:
                assert target.group_items(GROUP) == before
            else:
                assert target.load_group(GROUP) is None
            panics += 1
            continue
        _openmls._panic_at_storage_access(target._inner, None)
        break
    else:
        pytest.fail(f"{name} still panicked after 1000 storage accesses")
    assert panics >= 1, f"{name} never reached storage: the test proves nothing"


def test_panic_in_an_atomic_operation_is_an_mls_error_not_a_base_exception() -> None:
    a, _, _ = trio()
    with pytest.raises(InternalError, match="deliberate test panic"):
        _openmls._panic_for_test(a.member._inner)
    try:
        _openmls._panic_for_test(a.member._inner)
    except Exception as exc:  # PyO3's PanicException is a BaseException and would escape this
        assert type(exc) is InternalError and isinstance(exc, MlsError)
    assert a.member.take_changes() == []


# 3. Threads ----------------------------------------------------------------------------------------------


def test_concurrent_calls_from_threads_on_one_member() -> None:
    a, b, _ = trio()
    ga, gb = group_of(a.member), group_of(b.member)
    sent: list[bytes] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for j in range(20):
                ct = ga.encrypt(f"{i}:{j}".encode())
                with lock:
                    sent.append(ct)
        except BaseException as exc:
            errors.append(exc)
            raise

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    received = {(gb.process(ct).plaintext or b"").decode() for ct in sent}
    assert received == {f"{i}:{j}" for i in range(4) for j in range(20)}


async def test_member_works_from_asyncio_to_thread() -> None:
    a, b, _ = trio()
    ga, gb = group_of(a.member), group_of(b.member)
    ct = await asyncio.to_thread(ga.encrypt, b"from a worker thread")
    result = await asyncio.to_thread(gb.process, ct)
    assert result.plaintext == b"from a worker thread"


def test_the_gil_is_released_while_openmls_works() -> None:
    a = MlsMember(os.urandom(32))
    group = a.create_group(GROUP)
    kps = [MlsMember(os.urandom(32)).key_package() for _ in range(400)]
    call: list[float] = []

    def add() -> None:
        call.append(time.perf_counter())
        group.add(kps)  # ~100 ms of OpenMLS work
        call.append(time.perf_counter())

    ticks: list[float] = []
    t = threading.Thread(target=add)
    t.start()
    while t.is_alive():
        ticks.append(time.perf_counter())
    t.join()
    start, end = call
    assert end - start > 0.08, "the call is too short to tell"
    # Between entering the binding (at most a switch interval after `start`) and returning from it (at
    # most a switch interval before `end`), this thread runs Python only if the binding released the GIL.
    during = [x for x in ticks if start + 0.02 < x < end - 0.02]
    assert len(during) > 1000, (len(during), end - start)


# 4. Snapshots ---------------------------------------------------------------------------------------------


def test_restore_a_snapshot_and_apply_a_rival_commit_instead() -> None:
    a, b, c = trio()
    ga, gb, gc = group_of(a.member), group_of(b.member), group_of(c.member)
    snapshot = b.member.group_items(GROUP)
    epoch = gb.epoch
    rival_a = ga.self_update()
    rival_c = gc.self_update()
    gb.process(rival_a.commit)
    later = ga.encrypt(b"on a's branch")
    assert gb.process(later).plaintext == b"on a's branch"
    b.save()
    b.member.restore_group(GROUP, snapshot)
    assert gb.epoch == epoch and b.member.group_items(GROUP) == snapshot
    gc.merge_pending_commit()
    gb.process(rival_c.commit)
    assert gb.epoch_authenticator() == gc.epoch_authenticator()
    # The restore went through the journal: the stored rows give the same state.
    b.save()
    assert state(b.reload()) == state(b.member)


def test_bad_snapshots_are_refused_and_change_nothing() -> None:
    a, b, _ = trio()
    gb = group_of(b.member)
    items = b.member.group_items(GROUP)
    foreign = (b"x-not-a-group-row", b"value")
    with pytest.raises(InvalidSnapshot, match=foreign[0].hex()):
        b.member.restore_group(GROUP, [*items, foreign])
    broken = [(k, v[: len(v) // 2]) for k, v in items]
    with pytest.raises(InvalidSnapshot, match=GROUP.hex()):
        b.member.restore_group(GROUP, broken)
    assert b.member.take_changes() == []
    assert b.member.group_items(GROUP) == items
    assert gb.process(group_of(a.member).encrypt(b"still fine")).plaintext == b"still fine"


def test_every_row_of_a_snapshot_is_checked() -> None:
    a, b, _ = trio()
    gb = group_of(b.member)
    update = group_of(a.member).self_update()  # a past epoch: rows of every kind exist
    gb.process(update.commit)
    b.save()
    items = b.member.group_items(GROUP)
    first, last = min(k for k, _ in items), max(k for k, _ in items)
    prefix = first[: next(i for i, (x, y) in enumerate(zip(first, last, strict=False)) if x != y)]
    for i, (key, value) in enumerate(items):
        for garbage in (b"", b"\x0b\x01" * 50_000, value[:-1]):
            bad = [*items[:i], (key, garbage), *items[i + 1 :]]
            with pytest.raises(InvalidSnapshot, match=GROUP.hex()):
                b.member.restore_group(GROUP, bad)
    junk = (prefix + b"z", b"\x80")
    with pytest.raises(InvalidSnapshot, match=junk[0].hex()):
        b.member.restore_group(GROUP, [*items, junk])
    assert b.member.take_changes() == [] and b.member.group_items(GROUP) == items


def test_empty_snapshot_deletes_the_group_and_unknown_groups_have_no_items() -> None:
    _, b, _ = trio()
    with pytest.raises(UnknownGroup):
        b.member.group_items(b"no such group")
    b.member.restore_group(GROUP, [])
    assert b.member.load_group(GROUP) is None
    b.save()
    assert b.reload().load_group(GROUP) is None
