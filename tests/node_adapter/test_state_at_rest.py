"""The client's state encrypted at rest under the passphrase (`node_adapter.state_db`, S1-S4).

After a real chat exchange between two clients on embedded nodes replicating over 127.0.0.1, no file under
either data directory (the databases with their -wal and -shm, the key files, the log) holds a message, the
group's name or secret key bytes, neither while the clients run nor after; the right passphrase reopens
history and search; a wrong or missing one is a typed error and changes no file."""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from keygroups import Level
from node_adapter import Client, EmbeddedNode
from node_adapter.chat_store import ChatStore, IndexedMessage
from node_adapter.errors import StateUnreadable
from node_adapter.state_db import is_encrypted, key_path, state_key
from p2panda.keystore import PassphraseRequired, WrongPassphrase, create_identity
from tests.node_adapter.clients import key_packages_visible
from tests.tui.people import Person, eventually

pytestmark = pytest.mark.timeout(180)

PASSPHRASE = b"correct horse battery staple"
GROUP_NAME = "nightingale-orchard"
FROM_ALICE = "the unicorn-zeppelin lands at midnight"
FROM_BOB = "bring the periwinkle-harmonica"


def files_under(root: Path) -> Iterator[Path]:
    return (p for p in sorted(root.rglob("*")) if p.is_file())


def leaks(root: Path, needles: dict[str, bytes]) -> list[str]:
    """`what in file` for every needle found in any file under `root`."""
    found = []
    for path in files_under(root):
        data = path.read_bytes()
        found += [f"{what} in {path.relative_to(root)}" for what, needle in needles.items() if needle in data]
    return found


def fingerprints(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files_under(root)}


def secret_forms(what: str, secret: bytes) -> dict[str, bytes]:
    """A secret as raw bytes and as hex, whole and its first 12 bytes (a fragment is a leak too)."""
    return {
        f"{what} (raw)": secret,
        f"{what} (hex)": secret.hex().encode(),
        f"{what} (first 12 bytes)": secret[:12],
        f"{what} (hex, first 12 bytes)": secret[:12].hex().encode(),
    }


def client_secrets(person: Person) -> dict[str, bytes]:
    """Every secret the person's client holds: the identity seed, the state key, the group's epoch secrets,
    and the MLS state (its private keys and secrets, in the storage's own encoding) in 32-byte pieces."""
    client = person.c().client
    assert client.state_key is not None
    found = secret_forms(f"{person.name}'s identity seed", person.key_pair.private_key())
    found |= secret_forms(f"{person.name}'s state key", client.state_key)
    for record in client.store.groups():
        for epoch, secret in record.secrets.items():
            found |= secret_forms(f"{person.name}'s epoch {epoch} secret", secret)
    for n, (_, value) in enumerate(client.store.mls_items()):
        for i in range(0, len(value) - 32, 32):
            found[f"{person.name}'s MLS value {n} bytes {i}-{i + 32}"] = value[i : i + 32]
    return found


async def test_a_stolen_data_directory_shows_no_message_name_or_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    # As `panda chat` logs: INFO and up, into a file in the data directory.
    root = logging.getLogger()
    log_handler = logging.FileHandler(data / "chat.log")
    root.addHandler(log_handler)
    level = root.level
    root.setLevel(logging.INFO)
    alice = Person(data, "alice", passphrase=PASSPHRASE)
    alice.key_pair = create_identity(alice.data_dir, passphrase=PASSPHRASE)
    bob = Person(data, "bob", passphrase=PASSPHRASE)
    bob.key_pair = create_identity(bob.data_dir, passphrase=PASSPHRASE)
    needles = {
        "alice's message": FROM_ALICE.encode(),
        "a word of alice's message": b"zeppelin",
        "bob's message": FROM_BOB.encode(),
        "a word of bob's message": b"periwinkle",
        "the group's name": GROUP_NAME.encode(),
    }
    try:
        await alice.start()
        bob.peers = (alice.address,)
        await bob.start()
        group = await alice.c().client.create_group(GROUP_NAME, history=True)
        assert alice.node is not None
        await key_packages_visible(alice.node, bob.key)
        async with alice.c().lock:
            await group.add(bob.key, Level.WRITE)
        await group.send(FROM_ALICE)

        async def bob_reads() -> bool:
            return [h.snippet for h in bob.c().search("zeppelin")] == ["the unicorn-[zeppelin] lands at midnight"]

        await eventually(bob_reads, what="alice's message in bob's index")
        bob_group = (await bob.c().client.all_groups())[0]
        await bob_group.send(FROM_BOB)

        async def alice_reads() -> bool:
            return len(alice.c().search("periwinkle")) == 1

        await eventually(alice_reads, what="bob's message in alice's index")
        needles |= client_secrets(alice) | client_secrets(bob)
        assert any("epoch" in what for what in needles) and any("MLS" in what for what in needles)
        # While both run: the databases' -wal files hold the latest pages (encrypted too).
        assert any(p.name.endswith("-wal") for p in files_under(data))
        assert leaks(data, needles) == []
    finally:
        await bob.stop()
        await alice.stop()
        root.removeHandler(log_handler)
        root.setLevel(level)
        log_handler.close()
    assert (data / "chat.log").stat().st_size > 0  # the log was written (and is searched)
    assert leaks(data, needles) == []
    # The state files are SQLCipher databases (no SQLite header); the node's own database stays plain SQLite
    # (it holds only what the network holds: sealed envelopes, public keys).
    for person in ("alice", "bob"):
        assert sorted(p.name.split("-")[0] for p in (data / person).glob("*-*.sqlite3")) == ["chat", "client"]
        assert all(is_encrypted(p) for p in (data / person).glob("*-*.sqlite3"))
        assert not is_encrypted(data / person / "node.sqlite3")

    # The right passphrase reopens history and search (no peers: all of it is local).
    alice.peers = ()
    await alice.start()
    try:
        chat = alice.c()
        groups = await chat.client.all_groups()
        assert [g.name for g in groups] == [GROUP_NAME]
        assert sorted(m.text for m in await groups[0].messages()) == sorted([FROM_ALICE, FROM_BOB])
        assert [h.snippet for h in chat.search("periwinkle")] == ["bring the [periwinkle]-harmonica"]
    finally:
        await alice.stop()

    # S2 / S1: a wrong or missing passphrase is a typed error; the client's files do not change.
    state = data / "alice" / f"client-{alice.key.hex()[:16]}.sqlite3"
    before = {k: v for k, v in fingerprints(data / "alice").items() if not k.startswith("node")}
    async with EmbeddedNode(alice.data_dir, replication_port=0) as node:
        wrong = re.escape(f"the passphrase does not open key file {key_path(state)}")
        with pytest.raises(WrongPassphrase, match=wrong):
            await Client(node, alice.key_pair, passphrase=b"battery staple").start()
        with pytest.raises(PassphraseRequired, match="is sealed with a passphrase"):
            await Client(node, alice.key_pair).start()
    after = {k: v for k, v in fingerprints(data / "alice").items() if not k.startswith("node")}
    assert after == before


# --- the state files one by one (no nodes) ---------------------------------------------------------


def _index(store: ChatStore, text: str) -> None:
    store.index([IndexedMessage("m1", "g1", "a" * 64, 1, text, False)])


def test_s4_a_plain_state_file_is_encrypted_in_place_with_its_wal(tmp_path: Path) -> None:
    # A plain chat file whose last rows are only in its -wal (the process was killed): copied while open.
    plain = ChatStore(tmp_path / "live" / "chat.sqlite3")
    _index(plain, "the secret zeppelin")
    home = tmp_path / "home"
    home.mkdir()
    for name in ("chat.sqlite3", "chat.sqlite3-wal"):
        shutil.copy(tmp_path / "live" / name, home / name)
    plain.close()
    assert b"zeppelin" in (home / "chat.sqlite3-wal").read_bytes()
    (home / "chat.sqlite3.encrypting").write_bytes(b"left by a crash before the rename")

    key = state_key(home / "chat.sqlite3", PASSPHRASE)
    assert key is not None and key_path(home / "chat.sqlite3").exists()
    store = ChatStore(home / "chat.sqlite3", key)
    try:
        assert [h.snippet for h in store.search("zeppelin")] == ["the secret [zeppelin]"]
    finally:
        store.close()
    assert is_encrypted(home / "chat.sqlite3")
    assert (home / "chat.sqlite3").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in home.iterdir()) == ["chat.dbkey", "chat.sqlite3"]
    assert leaks(home, {"the text": b"zeppelin", **secret_forms("the key", key)}) == []


def test_s3_a_key_that_does_not_open_the_file_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite3"
    store = ChatStore(path, b"\x01" * 32)
    _index(store, "hello")
    store.close()
    before = fingerprints(tmp_path)
    with pytest.raises(StateUnreadable, match=re.escape(f"state file {path} does not open with its key")):
        ChatStore(path, b"\x02" * 32)
    assert fingerprints(tmp_path) == before
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0xFF  # damaged: a flipped byte in the first page (the schema)
    path.write_bytes(bytes(raw))
    damaged = fingerprints(tmp_path)
    with pytest.raises(StateUnreadable, match="does not open with its key"):
        ChatStore(path, b"\x01" * 32)
    assert fingerprints(tmp_path) == damaged


def test_s1_an_encrypted_file_is_never_opened_without_its_key(tmp_path: Path) -> None:
    path = tmp_path / "client.sqlite3"
    key = state_key(path, PASSPHRASE)
    assert key is not None
    ChatStore(path, key).close()
    before = fingerprints(tmp_path)
    with pytest.raises(PassphraseRequired, match=re.escape(f"key file {key_path(path)} is sealed with a passphrase")):
        state_key(path, None)
    with pytest.raises(StateUnreadable, match=re.escape(f"state file {path} is encrypted")):
        ChatStore(path, None)
    assert fingerprints(tmp_path) == before
    key_path(path).unlink()  # the key file lost: a new key would not open the file; none is made
    with pytest.raises(StateUnreadable, match=re.escape("is encrypted but its key file client.dbkey is missing")):
        state_key(path, PASSPHRASE)
    assert not key_path(path).exists()


def test_s2_a_wrong_passphrase_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "client.sqlite3"
    key = state_key(path, PASSPHRASE)
    assert key is not None and len(key) == 32
    assert state_key(path, PASSPHRASE) == key  # the same key each time
    before = fingerprints(tmp_path)
    with pytest.raises(WrongPassphrase, match=re.escape(f"the passphrase does not open key file {key_path(path)}")):
        state_key(path, b"battery staple")
    assert fingerprints(tmp_path) == before
    assert state_key(tmp_path / "other.sqlite3", None) is None  # no passphrase, no key file: plain


def test_without_a_passphrase_the_state_stays_plain_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite3"
    store = ChatStore(path, state_key(path, None))
    _index(store, "hello")
    store.close()
    assert path.read_bytes().startswith(b"SQLite format 3\x00") and not key_path(path).exists()
