"""Real `panda chat` processes in tmux: send-keys to type, capture-pane to read the screen."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

__all__ = ["Terminal", "free_port", "peer_address", "tmux_available", "envelopes_stored"]


def tmux_available() -> bool:
    return shutil.which("tmux") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peer_address(data_dir: Path, port: int) -> str:
    """What a user shares so that others can dial their chat's node: `panda node --print-address` on the same
    data directory and port (the node key is `node.key` there, made now if the chat has not run yet)."""
    flags = ["--data-dir", str(data_dir), "--replication-port", str(port), "--print-address"]
    result = subprocess.run(
        [sys.executable, "-m", "node_adapter.cli", "node", *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def envelopes_stored(data_dir: Path, schema_id: str) -> int:
    """How many operations of a schema the node in `data_dir` holds (read while the process runs: WAL)."""
    conn = sqlite3.connect(f"file:{data_dir / 'node.sqlite3'}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM operations WHERE schema_id = ?", (schema_id,)).fetchone()[0])
    finally:
        conn.close()


class Terminal:
    """One `panda chat` in its own tmux server (socket in tmp_path), 120x40."""

    def __init__(self, tmp_path: Path, name: str, args: list[str]) -> None:
        self.name = name
        self.socket = str(tmp_path / f"tmux-{name}")
        self.data_dir = tmp_path / name
        env = f"PYTHONPATH={ROOT} TERM=xterm-256color"
        command = f"cd {ROOT} && {env} {sys.executable} -m tui.cli chat --data-dir {self.data_dir} " + " ".join(args)
        # Textual draws on stderr: nothing may be redirected; errors go to chat.log in the data directory.
        subprocess.run(
            ["tmux", "-S", self.socket, "new-session", "-d", "-s", name, "-x", "120", "-y", "40", command],
            check=True,
            env={**os.environ, "TMUX": ""},
        )

    def screen(self) -> str:
        out = subprocess.run(
            ["tmux", "-S", self.socket, "capture-pane", "-p", "-t", self.name], check=True, capture_output=True
        )
        return out.stdout.decode()

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "-S", self.socket, "send-keys", "-t", self.name, *keys], check=True)

    def type(self, text: str) -> None:
        """Type literally, then Enter."""
        subprocess.run(["tmux", "-S", self.socket, "send-keys", "-t", self.name, "-l", text], check=True)
        time.sleep(0.1)
        self.keys("Enter")

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}'s screen never showed {text!r}; it shows:\n{screen}")
            time.sleep(0.2)

    def wait_gone(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text not in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}'s screen still shows {text!r}:\n{screen}")
            time.sleep(0.2)

    def running(self) -> bool:
        out = subprocess.run(["tmux", "-S", self.socket, "has-session", "-t", self.name], capture_output=True)
        return out.returncode == 0

    def wait_exit(self, timeout: float = 30.0) -> None:
        """Wait until the process ended (its tmux session closes with it)."""
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}'s process did not exit; its screen:\n{self.screen()}")
            time.sleep(0.2)

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], check=False, capture_output=True)
