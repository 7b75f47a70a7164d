"""Exposure defaults, seen from outside the process as `ss -ltnup` would (its sockets read from /proc):
nothing listens beyond 127.0.0.1 and no mDNS socket is open unless asked (the positive control, a node
asked to listen on 0.0.0.0, runs in a network namespace the test makes); the node key announced to
peers is not the user's identity; one node per data directory; what the node creates is private."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

from p2panda.keystore import create_identity
from tests.abuse.conftest import StartNode
from tests.abuse.probes import Bound, bound_sockets
from tests.p2panda.node.netns import hosts
from tests.p2panda.node.process import ROOT


def test_every_listener_is_on_loopback_by_default(start_node: StartNode) -> None:
    node = start_node()
    assert node.proc is not None
    bound = bound_sockets(node.proc.pid)
    http_port = int(node.url.rsplit(":", 1)[1].split("/")[0])
    assert {(b.protocol, b.port) for b in bound} == {("tcp", http_port), ("tcp", node.replication_port)}, bound
    assert all(b.host == "127.0.0.1" for b in bound), bound


def test_replication_on_every_interface_only_when_asked(start_node: StartNode) -> None:
    # Positive control for the probe above: a wildcard bind is seen as such. In a network namespace this
    # test makes, so that it listens on none of the host's interfaces (/proc/<pid>/net is the namespace's).
    with hosts(1) as [host]:
        node = start_node("", "--replication-host", "0.0.0.0", prefix=host.prefix)
        assert node.proc is not None
        assert os.readlink(f"/proc/{node.proc.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        bound = bound_sockets(node.proc.pid)
        node.kill()  # before its namespace goes
    http_port = int(node.url.rsplit(":", 1)[1].split("/")[0])
    assert set(bound) == {Bound("tcp", "0.0.0.0", node.replication_port), Bound("tcp", "127.0.0.1", http_port)}


def test_no_mdns_socket_unless_asked(start_node: StartNode) -> None:
    node = start_node("")
    assert node.proc is not None
    assert not [b for b in bound_sockets(node.proc.pid) if b.protocol.startswith("udp")]
    assert not any("mDNS" in line for line in node.log)
    # Positive control: the probe sees a bound UDP socket (one of this test's own).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        assert Bound("udp", "127.0.0.1", udp.getsockname()[1]) in bound_sockets(os.getpid())


def test_the_node_key_is_not_the_identity(start_node: StartNode, tmp_path: Path) -> None:
    identity = create_identity(tmp_path / "node")
    node = start_node()
    assert node.node_key and node.node_key != identity.public_key.hex()
    assert stat.S_IMODE((tmp_path / "node" / "node.key").stat().st_mode) == 0o600
    first = node.node_key
    node.kill()
    node.start()  # the node key is kept: peers that insist on it find the same node again
    assert node.node_key == first


def test_what_the_node_creates_is_private(start_node: StartNode, tmp_path: Path) -> None:
    node = start_node()
    data = tmp_path / "node"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("node.sqlite3", "node.sqlite3-wal", "node.key", "node.lock"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    assert node.proc is not None


def test_one_node_per_data_directory(start_node: StartNode, tmp_path: Path) -> None:
    first = start_node()
    assert first.proc is not None
    command = [sys.executable, "-m", "node_adapter.cli", "node", "--data-dir", str(tmp_path / "node")]
    second = subprocess.run(
        [*command, "--http-port", "0", "--replication-port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1, second.stderr
    assert f"is in use by another panda node (pid {first.proc.pid})" in second.stderr
    assert "Traceback" not in second.stderr
    # The kernel drops the lock with its holder, even on kill -9: the next start is not blocked.
    first.kill()
    first.start()
    assert first.url
