"""Hosts for tests that cross a network: Linux network namespaces joined by a bridge (iproute2, root).

Each host is a namespace with one veth interface on 10.213.<n>.0/24, its other end on a bridge in the
test's own namespace (which has .254), so the test reaches every host and the hosts reach each other,
multicast (mDNS) included.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Host:
    namespace: str
    address: str

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.namespace]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def netns_available() -> str | None:
    """None when namespaces can be made here, else why not."""
    if shutil.which("ip") is None:
        return "iproute2's ip is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    return None


@contextlib.contextmanager
def hosts(count: int) -> Iterator[list[Host]]:
    why = netns_available()
    if why is not None:
        if os.environ.get("P2PANDA_REQUIRE_NETNS"):
            raise RuntimeError(why)
        pytest.skip(why)
    tag = f"{os.getpid() % 10000}"
    net = 213
    bridge = f"p2pbr{tag}"
    made: list[Host] = []
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"10.{net}.{os.getpid() % 250}.254/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        for i in range(count):
            namespace = f"p2p{tag}h{i}"
            outside, inside = f"p2p{tag}o{i}", f"p2p{tag}i{i}"
            address = f"10.{net}.{os.getpid() % 250}.{i + 1}"
            _ip("netns", "add", namespace)
            made.append(Host(namespace, address))
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            _ip("link", "set", inside, "netns", namespace)
            _ip("link", "set", outside, "master", bridge)
            _ip("link", "set", outside, "up")
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", inside)
            _ip("-n", namespace, "link", "set", inside, "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
            _ip("-n", namespace, "route", "add", "224.0.0.0/4", "dev", inside)
        yield made
    finally:
        for host in made:
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
