"""Two real `panda chat` processes under tmux, embedded nodes replicating over 127.0.0.1 (no mDNS):
Alice creates a chat, adds Bob, they exchange messages both ways, Bob edits and deletes one, Alice removes
Bob, and Bob's screen says so and shows nothing sent afterwards."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from p2panda.keystore import create_identity
from secret_group.schemas import ENVELOPE
from tests.tui.terminal import Terminal, envelopes_stored, free_port, peer_address, tmux_available

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(not tmux_available(), reason="tmux is not installed (make postgres installs it)"),
]


def test_two_terminals_chat_edit_delete_and_removal(tmp_path: Path) -> None:
    bob_key = create_identity(tmp_path / "bob").public_key.hex()  # as `panda key new` would
    alice_port, bob_port = free_port(), free_port()
    alice = Terminal(tmp_path, "alice", ["--name", "alice", "--replication-port", str(alice_port), "--no-mdns"])
    bob = Terminal(
        tmp_path,
        "bob",
        [
            "--name",
            "bob",
            "--replication-port",
            str(bob_port),
            "--peer",
            peer_address(tmp_path / "alice", alice_port),
            "--no-mdns",
        ],
    )
    try:
        alice.wait_for("no chat open")
        bob.wait_for("no chat open")
        bob.wait_for("online (1 peer)")

        alice.type("/new team")
        alice.wait_for("team · epoch")
        alice.type(f"/add {bob_key}")
        alice.wait_for("added ")
        bob.wait_for("team · epoch")  # the welcome reached Bob and his app opened the chat
        alice.wait_for("bob", timeout=30)  # Bob's profile: his name in Alice's member list

        alice.type("hello bob")
        bob.wait_for("alice: hello bob")
        bob.type("hello alice")
        alice.wait_for("bob: hello alice")

        # Bob edits his message: Esc selects the newest message, e edits, the text is typed on.
        bob.keys("Escape")
        time.sleep(0.3)
        bob.keys("e")
        time.sleep(0.3)
        bob.type(" again")
        alice.wait_for("bob: hello alice again (edited)")

        bob.type("oops wrong chat")
        alice.wait_for("bob: oops wrong chat")
        bob.keys("Escape")
        time.sleep(0.3)
        bob.keys("d")
        alice.wait_gone("oops wrong chat")
        bob.wait_gone("oops wrong chat")

        alice.type(f"/remove {bob_key}")
        bob.wait_for("you were removed from this chat")
        before = envelopes_stored(bob.data_dir, ENVELOPE)
        alice.type("after you left")
        alice.wait_for("alice: after you left · delivered")  # bob's node has it
        # Positive control: the envelope reaches Bob's node, and still his screen does not show the text.
        deadline = time.monotonic() + 30
        while envelopes_stored(bob.data_dir, ENVELOPE) <= before:
            assert time.monotonic() < deadline, "alice's envelope never reached bob's node"
            time.sleep(0.2)
        time.sleep(1.0)  # bob's client has had the change: it processes what its node stores at once
        screen = bob.screen()
        assert "after you left" not in screen
        assert "hello alice again (edited)" in screen and "alice: hello bob" in screen
        assert "Traceback" not in screen and "Traceback" not in alice.screen()
    finally:
        alice.close()
        bob.close()
