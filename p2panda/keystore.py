"""The user's identity on disk: a hex-encoded Ed25519 seed in `<data dir>/identity.key`, mode 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import platformdirs

from p2panda.errors import P2PandaError
from p2panda.identity import IdentityError, KeyPair

__all__ = ["KeyStoreError", "default_data_dir", "identity_path", "create_identity", "load_identity"]

IDENTITY_FILE = "identity.key"


class KeyStoreError(P2PandaError):
    """The identity file is missing, already there, unreadable, or too widely readable."""


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("panda", appauthor=False))


def identity_path(data_dir: Path) -> Path:
    return data_dir / IDENTITY_FILE


def create_identity(data_dir: Path, *, overwrite: bool = False) -> KeyPair:
    """Generate a key pair and write it; refuses to replace an existing identity unless told to."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = identity_path(data_dir)
    key_pair = KeyPair.generate()
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        # Created with 0600 from the start so the secret is never readable by others, not even briefly.
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyStoreError(f"an identity already exists at {path}; refusing to overwrite it") from None
    with os.fdopen(fd, "w") as f:
        f.write(key_pair.private_key().hex() + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, 0o600)
    return key_pair


def load_identity(data_dir: Path) -> KeyPair:
    path = identity_path(data_dir)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyStoreError(f"no identity at {path}; create one with `panda key new`") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyStoreError(f"identity file {path} is accessible by others (mode {oct(mode & 0o777)}); chmod 600 it")
    text = path.read_text().strip()
    try:
        return KeyPair.from_private_key_hex(text)
    except IdentityError as exc:
        raise KeyStoreError(f"identity file {path} does not hold a 32-byte hex seed") from exc
