"""What the abuse tests look at from outside a `panda node` process: its sockets (as `ss -ltnup` would list
them, read from /proc), its memory, and raw HTTP on a TCP connection."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

LISTEN = "0A"
UNCONNECTED = "07"  # a bound UDP socket


@dataclass(frozen=True, slots=True)
class Bound:
    protocol: str  # tcp, tcp6, udp, udp6
    host: str
    port: int


def _address(text: str) -> tuple[str, int]:
    host_hex, port_hex = text.split(":")
    raw = bytes.fromhex(host_hex)
    # /proc prints the address as host-order 32-bit words.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words)), int(port_hex, 16)


def bound_sockets(pid: int) -> list[Bound]:
    """Listening TCP and bound UDP sockets of process `pid` (its open socket inodes matched against
    /proc/<pid>/net/{tcp,tcp6,udp,udp6})."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        path = Path(f"/proc/{pid}/net/{protocol}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            state, inode = fields[3], fields[9]
            wanted = LISTEN if protocol.startswith("tcp") else UNCONNECTED
            if inode in inodes and state == wanted:
                host, port = _address(fields[1])
                found.append(Bound(protocol, host, port))
    return found


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


async def raw_http(port: int, request: bytes, timeout: float = 10.0) -> bytes:
    """Send `request` as is on a fresh connection to 127.0.0.1:`port`; everything the node answers until
    it closes the connection (or `timeout` passes: then an AssertionError)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(timeout):
            return await reader.read()
    finally:
        writer.close()


async def http_response(port: int, request: bytes, timeout: float = 10.0) -> bytes:
    """Send `request` on a fresh connection; the response head and its `Content-Length` body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(timeout):
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")
            )
            return head + await reader.readexactly(length)
    finally:
        writer.close()


def tiny_receive_buffer_socket() -> socket.socket:
    """A TCP socket whose receive window is as small as the kernel allows: a client that does not read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    sock.setblocking(False)
    return sock
