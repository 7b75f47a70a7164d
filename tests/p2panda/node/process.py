"""`panda node` as a real process for tests."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]


class PandaNode:
    """`panda node` in a subprocess on a free port; its log lines are collected in `log`."""

    def __init__(
        self,
        data_dir: Path,
        database_url: str | None = None,
        extra: list[str] | None = None,
        *,
        prefix: list[str] | None = None,
        mdns: bool = False,
        replication_port: int = 0,
    ) -> None:
        """`prefix`: a command to run the node under (`ip netns exec NAME`); `mdns`: discover peers."""
        self.data_dir = data_dir
        self.database_url = database_url
        self.extra = extra or []
        self.prefix = prefix or []
        self.mdns = mdns
        self.fixed_port = replication_port
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.replication_port = 0
        self.node_key = ""
        self.address = ""  # the peer address the node logs: <node key>@127.0.0.1:<replication port>
        self.log: list[str] = []

    def start(self) -> None:
        args = [sys.executable, "-m", "node_adapter.cli", "node", "--data-dir", str(self.data_dir), "--http-port", "0"]
        args += ["--replication-port", str(self.fixed_port)] + (["--mdns"] if self.mdns else ["--no-mdns"])
        if self.database_url:
            args += ["--database", self.database_url]
        self.log = []
        self.proc = subprocess.Popen([*self.prefix, *args, *self.extra], cwd=ROOT, stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line)
            replication = re.search(r"replication ready: port (\d+), node ([0-9a-f]{64})", line)
            if replication:
                self.replication_port, self.node_key = int(replication.group(1)), replication.group(2)
            address = re.search(r"peer address: (\S+)", line)
            if address:
                self.address = address.group(1)
            match = re.search(r"node ready: (http://\S+)", line)
            if match:
                self.url = match.group(1)
                # Keep draining stderr so that a chatty node never blocks on a full pipe.
                threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True).start()
                return
        raise RuntimeError(f"panda node did not become ready: {''.join(self.log)}")

    def _drain(self, stream: Any) -> None:
        for line in stream:
            self.log.append(line)

    def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        self.proc = None
        return code
