"""The node's data directory: one process at a time, private to the user.

- L1 one node per data directory: `node.lock` is held (an exclusive `flock`) while a node runs; a second
  node on the same directory is refused with the holder's pid. The kernel drops the lock when the
  process dies, even by `kill -9`, so a stale lock file never blocks a restart.
- L2 what the node creates is private: directories 0700, files 0600 (the SQLite database is created
  empty with 0600 before SQLite opens it, and SQLite gives its WAL and shared-memory files the
  database's mode). Existing directories and files keep the mode their owner gave them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from p2panda.node.errors import NodeError

__all__ = ["DataDirInUse", "DataDirLock", "make_private_dir", "make_private_file"]

LOCK_FILE = "node.lock"


class DataDirInUse(NodeError):
    """L1: another process holds the data directory's lock."""


def make_private_dir(path: Path) -> None:
    """L2: create `path` (and missing parents) with mode 0700; an existing directory is left alone."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
            # mkdir's mode is filtered by the umask; a umask of 0 must not leave it open to others.
            os.chmod(directory, 0o700)


def make_private_file(path: Path) -> None:
    """L2: create an empty file with mode 0600 unless it exists (never truncates)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class DataDirLock:
    """L1: `acquire()` or raise `DataDirInUse`; `release()` when the node stops."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        make_private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirInUse(
                f"data directory {self.path.parent} is in use by another panda node (pid {holder}); "
                "stop it or give another --data-dir"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        # The file stays: unlinking it would let a third process lock a fresh inode while a second one
        # still waits on the old one.
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
