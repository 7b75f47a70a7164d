"""Keys on disk, each a hex-encoded Ed25519 seed, mode 0600: the user's identity in `<data dir>/identity.key`
(it signs what the user writes) and the node key in `<data dir>/node.key` (it identifies a running node to
its peers and on mDNS; kept apart so that running a node never announces who its user is)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import platformdirs

from p2panda.errors import P2PandaError
from p2panda.identity import IdentityError, KeyPair

__all__ = [
    "KeyStoreError",
    "default_data_dir",
    "identity_path",
    "create_identity",
    "load_identity",
    "node_key_path",
    "load_or_create_node_key",
]

IDENTITY_FILE = "identity.key"
NODE_KEY_FILE = "node.key"


class KeyStoreError(P2PandaError):
    """A key file is missing, already there, unreadable, or too widely readable."""


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("panda", appauthor=False))


def identity_path(data_dir: Path) -> Path:
    return data_dir / IDENTITY_FILE


def node_key_path(data_dir: Path) -> Path:
    return data_dir / NODE_KEY_FILE


def create_identity(data_dir: Path, *, overwrite: bool = False) -> KeyPair:
    """Generate a key pair and write it; refuses to replace an existing identity unless told to."""
    return _create_key(identity_path(data_dir), overwrite=overwrite)


def load_identity(data_dir: Path) -> KeyPair:
    return _load_key(identity_path(data_dir), "no identity at {path}; create one with `panda key new`")


def load_or_create_node_key(data_dir: Path) -> KeyPair:
    """The node key of this data directory, made on first use (a fresh key, unrelated to the identity)."""
    path = node_key_path(data_dir)
    if path.exists():
        return _load_key(path, "no node key at {path}")
    return _create_key(path, overwrite=False)


def _create_key(path: Path, *, overwrite: bool) -> KeyPair:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_pair = KeyPair.generate()
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        # Created with 0600 from the start so the secret is never readable by others, not even briefly.
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyStoreError(f"a key already exists at {path}; refusing to overwrite it") from None
    with os.fdopen(fd, "w") as f:
        f.write(key_pair.private_key().hex() + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, 0o600)
    return key_pair


def _load_key(path: Path, missing: str) -> KeyPair:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyStoreError(missing.format(path=path)) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyStoreError(f"key file {path} is accessible by others (mode {oct(mode & 0o777)}); chmod 600 it")
    text = path.read_text().strip()
    try:
        return KeyPair.from_private_key_hex(text)
    except IdentityError as exc:
        raise KeyStoreError(f"key file {path} does not hold a 32-byte hex seed") from exc
