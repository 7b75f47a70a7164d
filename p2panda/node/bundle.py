"""Bundles: files of signed entries with their operations that a node ingests at start.

Format: one CBOR array of `[entry bytes, operation bytes]` pairs, in an order a node can publish them
(logs in seq num order, schemas before the documents that use them). Ingesting is idempotent: entries
already stored are skipped.
"""

from __future__ import annotations

from pathlib import Path

import cbor2

from p2panda.node.errors import NodeError

__all__ = ["BundleError", "encode_bundle", "decode_bundle", "read_bundle"]


class BundleError(NodeError):
    """A bundle that cannot be read or does not ingest cleanly."""


def encode_bundle(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return cbor2.dumps([[entry, operation] for entry, operation in pairs])


def decode_bundle(data: bytes, name: str = "bundle") -> list[tuple[bytes, bytes]]:
    try:
        items = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, EOFError) as exc:
        raise BundleError(f"{name} is not CBOR: {exc}") from exc
    if not isinstance(items, list):
        raise BundleError(f"{name} is not an array of [entry, operation] pairs")
    pairs = []
    for index, item in enumerate(items):
        if not (
            isinstance(item, list) and len(item) == 2 and isinstance(item[0], bytes) and isinstance(item[1], bytes)
        ):
            raise BundleError(f"{name} item {index} is not an [entry bytes, operation bytes] pair")
        pairs.append((item[0], item[1]))
    return pairs


def read_bundle(path: Path) -> list[tuple[bytes, bytes]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read bundle {path}: {exc}") from exc
    return decode_bundle(data, str(path))
