"""Finding peers on the local network with mDNS / DNS-SD (zeroconf).

Every node announces a `_p2panda._tcp.local.` service: its replication port, its IPv4 addresses, and in
the TXT record its node key (`key`) and a tag of its network key (`net`: 8 bytes of a BLAKE3 keyed hash,
so that the network key itself is never broadcast). A node browses the same type and, for every service
of its own network that is not itself, reports a `Peer` with the announced key: the transport then
insists on that key (a spoofed announcement cannot make it talk to anyone else).

- D1 services of another network (other `net` tag) are ignored.
- D2 our own announcement is ignored.
- D3 of two nodes that find each other, only the one with the smaller key dials, so a pair keeps one
  session; the other side accepts.
- D4 a service that goes away cancels its dialling (reconnects stop); a changed address re-dials.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable

import ifaddr
from blake3 import blake3
from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from p2panda.errors import P2PandaError
from p2panda.identity import PublicKey

__all__ = ["SERVICE_TYPE", "Discovery", "network_tag"]

log = logging.getLogger(__name__)
SERVICE_TYPE = "_p2panda._tcp.local."
_RESOLVE_MS = 3000


def network_tag(network_key: bytes) -> str:
    return blake3(b"p2panda mdns network tag", key=network_key).digest(8).hex()


def local_addresses(host: str) -> list[str]:
    """The IPv4 addresses to announce: `host` itself, or every non-loopback address when it is a wildcard
    (loopback only when there is nothing else)."""
    if host not in ("", "0.0.0.0"):
        return [host]
    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ipaddress.ip_address(ip.ip).is_loopback:
                found.append(ip.ip)
    return sorted(set(found)) or ["127.0.0.1"]


class Discovery:
    """Announce this node and report the peers found: `found(key, host, port)` when a peer appears or
    moves, `lost(key)` when it goes away. `await start()`, `await stop()`."""

    def __init__(
        self,
        node_key: PublicKey,
        host: str,
        port: int,
        network_key: bytes,
        found: Callable[[PublicKey, str, int], None],
        lost: Callable[[PublicKey], None],
    ) -> None:
        self.node_key = node_key
        self.host = host
        self.port = port
        self.tag = network_tag(network_key)
        self.found = found
        self.lost = lost
        self._zeroconf: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._info: AsyncServiceInfo | None = None
        self._names: dict[str, PublicKey] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def instance(self) -> str:
        # A DNS label holds 63 bytes: the key's first half names the instance, the TXT record has it all.
        return f"{self.node_key.hex()[:32]}.{SERVICE_TYPE}"

    async def start(self) -> None:
        addresses = local_addresses(self.host)
        self._zeroconf = AsyncZeroconf(ip_version=IPVersion.V4Only)
        self._info = AsyncServiceInfo(
            SERVICE_TYPE,
            self.instance,
            addresses=[socket.inet_aton(a) for a in addresses],
            port=self.port,
            properties={"key": self.node_key.hex(), "net": self.tag},
            server=f"p2panda-{self.node_key.hex()[:16]}.local.",
        )
        await self._zeroconf.async_register_service(self._info, allow_name_change=True)
        self._browser = AsyncServiceBrowser(self._zeroconf.zeroconf, [SERVICE_TYPE], handlers=[self._changed])
        log.info("mDNS: announcing %s on %s port %d", SERVICE_TYPE, ", ".join(addresses), self.port)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._browser is not None:
            await self._browser.async_cancel()
            self._browser = None
        if self._zeroconf is not None:
            if self._info is not None:
                with contextlib.suppress(Exception):
                    await self._zeroconf.async_unregister_service(self._info)
            await self._zeroconf.async_close()
            self._zeroconf = None

    def _changed(self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed:
            key = self._names.pop(name, None)
            if key is not None:
                log.info("mDNS: %s left", key.hex())
                self.lost(key)
            return
        task = asyncio.ensure_future(self._resolve(zeroconf, service_type, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, zeroconf: Zeroconf, service_type: str, name: str) -> None:
        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(zeroconf, _RESOLVE_MS):
            log.debug("mDNS: %s did not resolve", name)
            return
        properties = info.properties or {}
        if properties.get(b"net") != self.tag.encode():
            return  # D1
        try:
            key = PublicKey.from_hex((properties.get(b"key") or b"").decode())
        except (P2PandaError, UnicodeDecodeError, ValueError) as exc:
            log.info("mDNS: %s announces no usable key: %s", name, exc)
            return
        addresses = info.parsed_addresses(IPVersion.V4Only)
        if key == self.node_key or not addresses or info.port is None:
            return  # D2
        self._names[name] = key
        if key.to_bytes() < self.node_key.to_bytes():
            return  # D3: the other node dials us
        log.info("mDNS: found %s at %s:%d", key.hex(), addresses[0], info.port)
        self.found(key, addresses[0], info.port)
