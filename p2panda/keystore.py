"""Keys on disk, each a hex-encoded Ed25519 seed, mode 0600: the user's identity in `<data dir>/identity.key`
(it signs what the user writes) and the node key in `<data dir>/node.key` (it identifies a running node to
its peers and on mDNS; kept apart so that running a node never announces who its user is).

With a passphrase, the identity file holds the seed sealed instead (one line,
`p2panda-sealed-key v1 <opslimit> <memlimit> <salt hex> <secretbox hex>`): the key is derived from the
passphrase with Argon2id (libsodium, a fresh 16-byte salt per file; the cost is stored so that it can be
raised later) and the seed is sealed with XSalsa20-Poly1305 (`SecretBox`, random nonce). A stolen file
without the passphrase shows no key bytes; a wrong passphrase is `WrongPassphrase`, and nothing changes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils
import platformdirs

from p2panda.errors import P2PandaError
from p2panda.identity import IdentityError, KeyPair

__all__ = [
    "KeyStoreError",
    "PASSPHRASE_ENV",
    "PassphraseRequired",
    "read_passphrase",
    "WrongPassphrase",
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


class PassphraseRequired(KeyStoreError):
    """The key file is sealed with a passphrase and none was given."""


class WrongPassphrase(KeyStoreError):
    """The passphrase does not open the sealed key file (or the file was tampered with)."""


_SEALED = "p2panda-sealed-key v1"
# libsodium's "interactive" Argon2id cost: about 0.1 s and 64 MiB per unlock, once per start.
OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE


def _derive(passphrase: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return bytes(nacl.pwhash.argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase, salt, opslimit, memlimit))


def seal_seed(seed: bytes, passphrase: bytes) -> str:
    """The sealed-key line for a 32-byte seed."""
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    box = nacl.secret.SecretBox(_derive(passphrase, salt, OPSLIMIT, MEMLIMIT))
    return f"{_SEALED} {OPSLIMIT} {MEMLIMIT} {salt.hex()} {bytes(box.encrypt(seed)).hex()}"


def open_seed(text: str, passphrase: bytes | None, path: Path) -> bytes:
    """The seed a sealed-key line holds."""
    parts = text.split(" ")
    if len(parts) != 6 or " ".join(parts[:2]) != _SEALED:
        raise KeyStoreError(f"key file {path} is not a sealed key ({text[:30]!r}...)")
    if passphrase is None:
        raise PassphraseRequired(
            f"key file {path} is sealed with a passphrase; give it (--passphrase-file or P2PANDA_PASSPHRASE)"
        )
    try:
        opslimit, memlimit, salt, sealed = (
            int(parts[2]),
            int(parts[3]),
            bytes.fromhex(parts[4]),
            bytes.fromhex(parts[5]),
        )
        if not (
            nacl.pwhash.argon2id.OPSLIMIT_MIN <= opslimit <= nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE
            and nacl.pwhash.argon2id.MEMLIMIT_MIN <= memlimit <= nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE
            and len(salt) == nacl.pwhash.argon2id.SALTBYTES
        ):
            raise ValueError("cost or salt out of range")
    except ValueError as exc:
        raise KeyStoreError(f"key file {path} is a damaged sealed key: {exc}") from None
    try:
        return bytes(nacl.secret.SecretBox(_derive(passphrase, salt, opslimit, memlimit)).decrypt(sealed))
    except nacl.exceptions.CryptoError:
        raise WrongPassphrase(f"the passphrase does not open key file {path}") from None


PASSPHRASE_ENV = "P2PANDA_PASSPHRASE"


def read_passphrase(path: Path | None) -> bytes | None:
    """The passphrase from a file (its first line) or else the environment variable; None for neither."""
    if path is not None:
        try:
            lines = path.read_bytes().splitlines()
        except OSError as exc:
            raise KeyStoreError(f"passphrase file {path} cannot be read: {exc.strerror}") from None
        if not lines or not lines[0]:
            raise KeyStoreError(f"passphrase file {path} is empty")
        return lines[0]
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode() if value else None


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("panda", appauthor=False))


def identity_path(data_dir: Path) -> Path:
    return data_dir / IDENTITY_FILE


def node_key_path(data_dir: Path) -> Path:
    return data_dir / NODE_KEY_FILE


def create_identity(data_dir: Path, *, overwrite: bool = False, passphrase: bytes | None = None) -> KeyPair:
    """Generate a key pair and write it (sealed under `passphrase` when given); refuses to replace an
    existing identity unless told to."""
    return _create_key(identity_path(data_dir), overwrite=overwrite, passphrase=passphrase)


def load_identity(data_dir: Path, passphrase: bytes | None = None) -> KeyPair:
    """The identity; `PassphraseRequired` / `WrongPassphrase` when it is sealed and the passphrase is
    missing / wrong (a passphrase given for an unsealed file is ignored)."""
    return _load_key(identity_path(data_dir), "no identity at {path}; create one with `panda key new`", passphrase)


def load_or_create_node_key(data_dir: Path) -> KeyPair:
    """The node key of this data directory, made on first use (a fresh key, unrelated to the identity)."""
    path = node_key_path(data_dir)
    if path.exists():
        return _load_key(path, "no node key at {path}")
    return _create_key(path, overwrite=False)


def _create_key(path: Path, *, overwrite: bool, passphrase: bytes | None = None) -> KeyPair:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_pair = KeyPair.generate()
    text = key_pair.private_key().hex() if passphrase is None else seal_seed(key_pair.private_key(), passphrase)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        # Created with 0600 from the start so the secret is never readable by others, not even briefly.
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyStoreError(f"a key already exists at {path}; refusing to overwrite it") from None
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, 0o600)
    return key_pair


def _load_key(path: Path, missing: str, passphrase: bytes | None = None) -> KeyPair:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyStoreError(missing.format(path=path)) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyStoreError(f"key file {path} is accessible by others (mode {oct(mode & 0o777)}); chmod 600 it")
    text = path.read_text().strip()
    if text.startswith(_SEALED):
        return KeyPair.from_private_key(open_seed(text, passphrase, path))
    try:
        return KeyPair.from_private_key_hex(text)
    except IdentityError as exc:
        raise KeyStoreError(f"key file {path} does not hold a 32-byte hex seed") from exc
