"""The client's state encrypted at rest under the passphrase (`node_adapter.state_db`, S1-S4).

After a real chat exchange between two clients on embedded nodes replicating over 127.0.0.1, no file under
either data directory (the databases with their -wal and -shm, the key files, the log) holds a message, the
group's name or secret key bytes; the right passphrase reopens history and search; a wrong one is
`WrongPassphrase` and changes nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from keygroups import Level
from node_adapter.chat_store import ChatStore, IndexedMessage
from node_adapter.client_store import ClientStore
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


def secret_forms(what: str, secret: bytes) -> dict[str, bytes]:
    """A secret as raw bytes and as hex, whole and its first 12 bytes (a fragment is a leak too)."""
    return {
        f"{what} (raw)": secret,
        f"{what} (hex)": secret.hex().encode(),
        f"{what} (first 12 bytes)": secret[:12],
        f"{what} (hex, first 12 bytes)": secret[:12].hex().encode(),
    }


async def test_a_stolen_data_directory_shows_no_message_name_or_key(tmp_path: Path) -> None:
    log_handler = logging.FileHandler(tmp_path / "chat.log")
    logging.getLogger().addHandler(log_handler)
    alice = Person(tmp_path / "data", "alice", passphrase=PASSPHRASE)
    alice.key_pair = create_identity(alice.data_dir, passphrase=PASSPHRASE)
    await alice.start()
    bob = Person(tmp_path / "data", "bob", peers=(alice.address,), passphrase=PASSPHRASE)
    bob.key_pair = create_identity(bob.data_dir, passphrase=PASSPHRASE)
    await bob.start()
    try:
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
        secrets = {}
        for person in (alice, bob):
            c = person.c().client
            secrets |= secret_forms(f"{person.name}'s identity seed", person.key_pair.private_key())
            assert c.state_key is not None
            secrets |= secret_forms(f"{person.name}'s state key", c.state_key)
            for record in c.store.groups():
                for epoch, secret in record.secrets.items():
                    secrets |= secret_forms(f"{person.name}'s epoch {epoch} secret", secret)
        assert any("epoch" in what for what in secrets)  # history mode: there are epoch secrets to look for
    finally:
        await bob.stop()
        await alice.stop()
        logging.getLogger().removeHandler(log_handler)
        log_handler.close()
    (tmp_path / "data" / "chat.log").write_bytes((tmp_path / "chat.log").read_bytes())
    needles = {
        "alice's message": FROM_ALICE.encode(),
        "a word of alice's message": b"zeppelin",
        "bob's message": FROM_BOB.encode(),
        "a word of bob's message": b"periwinkle",
        "the group's name": GROUP_NAME.encode(),
        **secrets,
    }
    assert leaks(tmp_path / "data", needles) == []
    for path in files_under(tmp_path / "data"):
        print(path.relative_to(tmp_path), path.stat().st_size, path.read_bytes()[:16])
