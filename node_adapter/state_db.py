"""The client's state databases (the client's `client-<key16>.sqlite3` and the chat's `chat-<key16>.sqlite3`:
MLS secrets, decrypted messages, the full-text index), opened plain or encrypted at rest.

Without a passphrase a state file is a plain SQLite file (0600 in a 0700 directory). With one it is a
SQLCipher 4 database: every page, the header and the -wal file's pages included, is AES-256 encrypted and
authenticated (HMAC-SHA512), so a copy of the file shows no message text, group name or key bytes.

The database key is a random 32-byte data key, made when the first state file is encrypted and kept beside
the state files in `<state file stem>.dbkey`, sealed under the passphrase in the identity's sealed-key format
(Argon2id, then XSalsa20-Poly1305: `p2panda.keystore.seal_seed`). SQLCipher is given the key raw
(`PRAGMA key = "x'<hex>'"`) so that it does not stretch it again with its own PBKDF2. A sealed random key
rather than a key derived from the passphrase directly: a wrong passphrase is told apart from a damaged
database (the seal's MAC fails before any database is touched), and a new passphrase would re-seal 32 bytes
instead of re-encrypting every database. The client's and the chat's files share the one data key.

Checks (tests name them):

- S1 a state file that is encrypted is never opened without its key: no passphrase while the key file is
  there is `PassphraseRequired`; an encrypted file without a key file is `StateUnreadable`.
- S2 a wrong passphrase is `WrongPassphrase` and changes no file.
- S3 a key that does not open the file (a damaged file, or another identity's key file) is
  `StateUnreadable` naming the file; nothing is written.
- S4 a plain state file opened with a key is encrypted in place (chosen over refusing, so that a user who
  adds a passphrase keeps the history): its WAL is checkpointed, `sqlcipher_export` writes an encrypted
  copy beside it (0600), the copy is synced and renamed over the plain file, and the plain file's -wal and
  -shm are removed. A crash before the rename leaves the plain file as it was (the copy is made again).
  The plain pages may stay on the disk's free blocks: only a passphrase from the start avoids that.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import nacl.utils
from sqlcipher3 import dbapi2 as sqlcipher

from node_adapter.errors import StateUnreadable
from p2panda.keystore import open_seed, seal_seed

__all__ = ["state_key", "key_path", "connect", "is_encrypted"]

KEY_SUFFIX = ".dbkey"
_PLAIN_HEADER = b"SQLite format 3\x00"


def key_path(state_path: Path) -> Path:
    """Where the sealed data key of the state files beside `state_path` lives."""
    return state_path.with_suffix(KEY_SUFFIX)


def state_key(state_path: Path, passphrase: bytes | None) -> bytes | None:
    """The data key for `state_path` (and the chat's file beside it): None without a passphrase, else the
    key sealed in the key file, made and sealed now on first use. Argon2id runs once (about 0.1 s)."""
    path = key_path(state_path)
    if passphrase is None:
        if path.exists():  # S1: the files are encrypted; say which passphrase is missing
            open_seed(path.read_text().strip(), None, path)
        return None
    if path.exists():
        return open_seed(path.read_text().strip(), passphrase, path)  # S2
    if is_encrypted(state_path):  # S1: a new key would not open it; make none
        raise StateUnreadable(f"state file {state_path} is encrypted but its key file {path.name} is missing")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = nacl.utils.random(32)
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(seal_seed(key, passphrase) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # a key file is there whole or not at all
    _sync_dir(path.parent)
    return key


def is_encrypted(path: Path) -> bool:
    """True for a non-empty file that is not a plain SQLite file."""
    try:
        with path.open("rb") as f:
            head = f.read(len(_PLAIN_HEADER))
    except FileNotFoundError:
        return False
    return bool(head) and head != _PLAIN_HEADER


def connect(path: Path, key: bytes | None) -> sqlite3.Connection:
    """An autocommit connection to the state file at `path` (made 0600 when new): plain `sqlite3` without a
    key, SQLCipher with one. The caller sets its journal mode and schema."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    if key is None:
        if is_encrypted(path):
            raise StateUnreadable(
                f"state file {path} is encrypted (or not SQLite) and no passphrase was given for it (its key file "
                f"{key_path(path).name} is missing)"
            )
        return sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    if len(key) != 32:
        raise ValueError(f"a state key has 32 bytes, not {len(key)}")
    if path.stat().st_size > 0 and not is_encrypted(path):
        _encrypt_in_place(path, key)  # S4
    conn = _open_keyed(path, key)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher.DatabaseError:
        conn.close()
        raise StateUnreadable(
            f"state file {path} does not open with its key (damaged, or another key's file)"
        ) from None
    # The SQLCipher connection has the DB-API of `sqlite3` (it is a fork of it); its errors are its own
    # classes, which no caller catches by type.
    return conn  # type: ignore[no-any-return]


def _open_keyed(path: Path, key: bytes) -> sqlcipher.Connection:
    conn = sqlcipher.connect(str(path), isolation_level=None, check_same_thread=False)
    # A wrong key would otherwise print SQLCipher's own error lines on stderr, under the terminal UI.
    conn.execute("PRAGMA cipher_log_level = NONE")
    conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
    return conn


def _encrypt_in_place(path: Path, key: bytes) -> None:
    tmp = path.with_name(path.name + ".encrypting")
    for stale in (tmp, tmp.with_name(tmp.name + "-journal")):
        stale.unlink(missing_ok=True)  # an earlier attempt that crashed before the rename
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    conn = sqlcipher.connect(str(path), isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # rows still in the plain -wal go into the copy
        conn.execute(f"ATTACH DATABASE ? AS encrypted KEY \"x'{key.hex()}'\"", (str(tmp),))
        conn.execute("SELECT sqlcipher_export('encrypted')")
        conn.execute("DETACH DATABASE encrypted")
    finally:
        conn.close()
    with tmp.open("rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    for side in ("-wal", "-shm"):  # the plain file's: they would not match the encrypted one
        path.with_name(path.name + side).unlink(missing_ok=True)
    _sync_dir(path.parent)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
