"""Peer addresses (`peer.py` P1-P3): `<node key>@host:port` is what a node dials; an address without the
key is refused with a message that says how to get it, from the library, the embedded node and the CLI;
`panda node --print-address` prints the address the node then logs at start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from node_adapter import EmbeddedNode
from p2panda import KeyPair
from p2panda.node.peer import Peer, PeerAddressError
from tests.p2panda.node.postgres import free_port
from tests.p2panda.node.process import ROOT, PandaNode

PANDA_NODE = [sys.executable, "-m", "node_adapter.cli", "node"]
KEY = KeyPair.from_private_key(bytes([5]) * 32).public_key


def test_a_keyed_address_parses_and_prints_back() -> None:
    peer = Peer.parse(f"{KEY.hex()}@127.0.0.1:2022")
    assert (peer.host, peer.port, peer.public_key) == ("127.0.0.1", 2022, KEY)
    assert str(peer) == f"{KEY.hex()}@127.0.0.1:2022"
    upper = Peer.parse(f"{KEY.hex().upper()}@[::1]:7")  # P1 any case; P3 IPv6 in brackets
    assert (upper.host, upper.port, upper.public_key) == ("::1", 7, KEY)
    assert str(upper) == f"{KEY.hex()}@[::1]:7"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("127.0.0.1:2022", "peer '127.0.0.1:2022' has no node key: write it as <node key>@127.0.0.1:2022"),  # P2
        ("host:1", "to get the key, run `panda node --print-address` on that machine"),  # P2
        ("00@host:1", "peer '00@host:1': '00' is not a node key"),  # P1
        (f"{'00' * 32}@host:1", "is not a node key (64 hex digits of an Ed25519 public key)"),  # P1: not a point
        (f"{KEY.hex()}@host", "is not <node key>@host:port"),  # P3
        (f"{KEY.hex()}@host:0", "is not <node key>@host:port"),  # P3
        (f"{KEY.hex()}@:22", "is not <node key>@host:port"),  # P3
    ],
)
def test_a_bad_address_is_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(PeerAddressError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Peer.parse(text)


def test_the_embedded_node_refuses_a_keyless_peer_before_it_starts(tmp_path: Path) -> None:
    with pytest.raises(PeerAddressError, match="peer 'localhost:9' has no node key"):
        EmbeddedNode(tmp_path / "data", replication_port=0, peers=("localhost:9",))
    assert not (tmp_path / "data").exists()


def test_print_address_is_the_address_the_node_logs(tmp_path: Path) -> None:
    port = free_port()
    printed = subprocess.run(
        [*PANDA_NODE, "--data-dir", str(tmp_path / "n"), "--replication-port", str(port), "--print-address"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert printed.returncode == 0, printed.stderr
    node = PandaNode(tmp_path / "n", replication_port=port)
    node.start()
    try:
        assert printed.stdout == f"{node.address}\n"
        assert node.address == f"{node.node_key}@127.0.0.1:{port}"
    finally:
        node.kill()


def test_print_address_with_a_free_port_says_when_the_address_is_known(tmp_path: Path) -> None:
    result = subprocess.run(
        [*PANDA_NODE, "--data-dir", str(tmp_path / "n"), "--replication-port", "0", "--print-address"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "the node logs it as 'peer address: ...'" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
