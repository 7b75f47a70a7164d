"""A stock aquadoggo 0.8.1 as a real process for `make interop` (the runner in interop/aquadoggo/).

Opt-in: the adapter suite adds an `aquadoggo` node kind only when P2PANDA_AQUADOGGO_RUNNER names the
built runner binary. Each test gets a fresh node (its own SQLite file) on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

RUNNER_ENV = "P2PANDA_AQUADOGGO_RUNNER"


def runner_path() -> Path | None:
    value = os.environ.get(RUNNER_ENV)
    return Path(value) if value else None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Aquadoggo:
    """The runner in a subprocess; `url` is its GraphQL endpoint on 127.0.0.1, `log` its output lines."""

    def __init__(self, runner: Path, data_dir: Path) -> None:
        self.runner = runner
        self.data_dir = data_dir
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.log: list[str] = []

    def start(self, timeout: float = 60) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "blobs").mkdir(exist_ok=True)
        args = [
            str(self.runner),
            str(self.data_dir / "aquadoggo.sqlite"),
            str(_free_port()),
            str(self.data_dir / "blobs"),
        ]
        # stdin stays open: the runner stops its node when it closes (also when this process dies).
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert self.proc.stdout is not None
        port = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.log.append(line)
            # aquadoggo falls back to a random port when the given one was taken meanwhile: the port it
            # prints is the one it serves.
            match = re.search(r"Go to http://[0-9.]+:(\d+)/graphql", line)
            if match:
                port = int(match.group(1))
            if line.strip() == "runner ready" and port is not None:
                self.url = f"http://127.0.0.1:{port}/graphql"
                threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True).start()
                return
        self.stop()
        raise RuntimeError(f"aquadoggo did not become ready: {''.join(self.log)}")

    def _drain(self, stream: IO[str]) -> None:
        for line in stream:
            self.log.append(line)

    def stop(self) -> int:
        """Close stdin (the runner shuts its node down) and wait; kill it if it does not stop."""
        assert self.proc is not None
        proc, self.proc = self.proc, None
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(timeout=30)
