"""Two real `panda chat` processes under tmux with a passphrase: after they chat (and one of them hits an
error that names a value), no file in either data directory holds a message, the chat's name, that value or
the identity seed: the state files are encrypted, the identity is sealed and the log withholds values."""

from __future__ import annotations

from pathlib import Path

import pytest

from node_adapter.state_db import is_encrypted
from p2panda.keystore import create_identity
from tests.node_adapter.test_state_at_rest import files_under, leaks, secret_forms
from tests.tui.terminal import Terminal, free_port, peer_address, tmux_available

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(not tmux_available(), reason="tmux is not installed (make postgres installs it)"),
]

PASSPHRASE = b"correct horse battery staple"


def test_two_terminals_with_a_passphrase_leave_nothing_readable(tmp_path: Path) -> None:
    (tmp_path / "pw").write_bytes(PASSPHRASE + b"\n")
    # As `panda key new --passphrase-file` would.
    key_pairs = {name: create_identity(tmp_path / name, passphrase=PASSPHRASE) for name in ("alice", "bob")}
    seeds = {name: key_pair.private_key() for name, key_pair in key_pairs.items()}
    bob_key = key_pairs["bob"].public_key.hex()
    alice_port, bob_port = free_port(), free_port()
    common = ["--passphrase-file", str(tmp_path / "pw"), "--no-mdns"]
    alice = Terminal(tmp_path, "alice", ["--name", "alice", "--replication-port", str(alice_port), *common])
    bob_peer = peer_address(tmp_path / "alice", alice_port)
    bob = Terminal(tmp_path, "bob", ["--name", "bob", "--replication-port", str(bob_port), "--peer", bob_peer, *common])
    secret_name = "xylophone-" * 7  # 70 characters: too long for a display name, and named in the error
    try:
        alice.wait_for("no chat open")
        bob.wait_for("online (1 peer)")
        alice.type("/new nightingale-orchard")
        alice.wait_for("nightingale-orchard · epoch")
        alice.type(f"/add {bob_key}")
        alice.wait_for("added ")
        bob.wait_for("nightingale-orchard · epoch")
        alice.type("the unicorn-zeppelin lands at midnight")
        bob.wait_for("alice: the unicorn-zeppelin lands at midnight")
        bob.type("bring the periwinkle-harmonica")
        alice.wait_for("bob: bring the periwinkle-harmonica")
        alice.type(f"/name {secret_name}")
        alice.wait_for("must be 1-64 printable characters")  # the screen names it; the log must not
        alice.keys("C-q")
        bob.keys("C-q")
        alice.wait_exit()
        bob.wait_exit()
    finally:
        alice.close()
        bob.close()
    log = (tmp_path / "alice" / "chat.log").read_text()
    assert "(values withheld)" in log  # the error was logged, without its value
    assert f"panda chat started for {key_pairs['alice'].public_key.hex()}" in log  # public values stay
    needles = {
        "alice's message": b"zeppelin",
        "bob's message": b"periwinkle",
        "the chat's name": b"nightingale",
        "the display name alice typed": b"xylophone",
        **secret_forms("alice's seed", seeds["alice"]),
        **secret_forms("bob's seed", seeds["bob"]),
    }
    assert leaks(tmp_path / "alice", needles) == [] and leaks(tmp_path / "bob", needles) == []
    states = [p for name in ("alice", "bob") for p in files_under(tmp_path / name) if p.suffix == ".sqlite3"]
    assert len([p for p in states if p.name.startswith(("client-", "chat-"))]) == 4
    assert all(is_encrypted(p) for p in states if p.name.startswith(("client-", "chat-")))
