"""The outbox across an offline peer, with real `panda chat` processes under tmux (127.0.0.1, no mDNS,
fixed ports): Bob's process is stopped, Alice writes three messages (sent to her own node, not to Bob),
Bob starts again with the same data directory, and the three arrive on his screen in the order they were
written while Alice's screen marks them "delivered" (a peer node has them; "sent" while only hers had)."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2panda.keystore import create_identity
from secret_group.schemas import ENVELOPE
from tests.tui.terminal import Terminal, envelopes_stored, free_port, peer_address, tmux_available

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(not tmux_available(), reason="tmux is not installed (make postgres installs it)"),
]

OFFLINE = ["written offline one", "written offline two", "written offline three"]


def test_messages_written_while_the_peer_is_stopped_arrive_in_order_when_it_returns(tmp_path: Path) -> None:
    bob_key = create_identity(tmp_path / "bob").public_key.hex()
    alice_port, bob_port = free_port(), free_port()
    alice = Terminal(tmp_path, "alice", ["--name", "alice", "--replication-port", str(alice_port), "--no-mdns"])
    bob_args = [
        "--name",
        "bob",
        "--replication-port",
        str(bob_port),
        "--peer",
        peer_address(tmp_path / "alice", alice_port),
        "--no-mdns",
    ]
    bob = Terminal(tmp_path, "bob", bob_args)
    try:
        bob.wait_for("online (1 peer)")
        alice.type("/new team")
        alice.wait_for("team · epoch")
        alice.type(f"/add {bob_key}")
        bob.wait_for("team · epoch")
        alice.type("before the break")
        bob.wait_for("alice: before the break")

        bob.keys("C-q")  # Bob quits: his node stops with the app
        bob.wait_exit()
        alice.wait_for("offline")
        stored = envelopes_stored(bob.data_dir, ENVELOPE)

        for text in OFFLINE:
            alice.type(text)
        screen = alice.wait_for(f"alice: {OFFLINE[-1]} · sent")
        for text in OFFLINE:
            assert f"alice: {text} · sent" in screen
        # Nothing reached Bob's node while his process was stopped (his database is still readable).
        assert envelopes_stored(bob.data_dir, ENVELOPE) == stored

        bob = Terminal(tmp_path, "bob", bob_args)  # the same data directory, the same ports
        screen = bob.wait_for(f"alice: {OFFLINE[-1]}")
        lines = [line for line in screen.splitlines() if "alice: " in line]
        shown = [next(i for i, line in enumerate(lines) if f"alice: {text}" in line) for text in OFFLINE]
        assert shown == sorted(shown), f"out of order on bob's screen:\n{screen}"
        assert "alice: before the break" in screen
        assert envelopes_stored(bob.data_dir, ENVELOPE) >= stored + len(OFFLINE)
        # Alice's screen: a peer node has them now (they were "sent", on her node only, until Bob returned).
        screen = alice.wait_for(f"alice: {OFFLINE[-1]} · delivered")
        for text in OFFLINE:
            assert f"alice: {text} · delivered" in screen
        assert "Traceback" not in screen and "Traceback" not in bob.screen()
    finally:
        alice.close()
        bob.close()
