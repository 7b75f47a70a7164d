"""A peer address: `<node key>@host:port`, what a node dials.

The Secret Handshake needs the server's node key before the first byte is sent (`shs.py`), so an address
without one cannot be dialled. The node key is the node's transport key (`node.key` in its data directory),
not its user's identity; `panda node --print-address` prints a node's address, and a starting node logs it.

- P1 the key is 64 hex digits (any case) of a valid Ed25519 public key, before the last `@`.
- P2 an address without a key is refused with a message that says how to get the key.
- P3 the port is 1-65535; the host is not empty; an IPv6 host is written in brackets (`[::1]:2022`).
"""

from __future__ import annotations

from dataclasses import dataclass

from p2panda.identity import InvalidPublicKey, PublicKey
from p2panda.node.errors import NodeError

__all__ = ["HOW_TO_GET_THE_KEY", "Peer", "PeerAddressError"]

HOW_TO_GET_THE_KEY = (
    "run `panda node --print-address` on that machine (with its --data-dir), or read the "
    "'peer address:' line it logs at start"
)


class PeerAddressError(NodeError):
    """A peer address that cannot be dialled; the message names it and says what is wrong."""


@dataclass(frozen=True, slots=True)
class Peer:
    """A peer to dial: its node key and address."""

    host: str
    port: int
    public_key: PublicKey

    @classmethod
    def parse(cls, text: str) -> Peer:
        key_text, at, address = text.rpartition("@")
        host, colon, port = address.rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:  # P3
            raise PeerAddressError(f"peer {text!r} is not <node key>@host:port")
        if not at:  # P2
            raise PeerAddressError(
                f"peer {text!r} has no node key: write it as <node key>@{address} (the node key is 64 hex digits); "
                f"to get the key, {HOW_TO_GET_THE_KEY}"
            )
        try:  # P1
            key = PublicKey.from_hex(key_text.lower())
        except InvalidPublicKey:
            raise PeerAddressError(
                f"peer {text!r}: {key_text!r} is not a node key (64 hex digits of an Ed25519 public key)"
            ) from None
        return cls(host.removeprefix("[").removesuffix("]"), int(port), key)

    @property
    def address(self) -> str:
        """host:port, an IPv6 host in brackets."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.public_key.hex()}@{self.address}"
