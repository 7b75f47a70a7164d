"""Bad settings, as a user types them: `panda node` exits 1 with one line per bad value, naming the key,
where it came from and the value; no traceback, and nothing is created in the data directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.p2panda.node.process import ROOT


def panda_node(tmp_path: Path, *args: str, config: str | None = None) -> subprocess.CompletedProcess[str]:
    flags = list(args)
    if config is not None:
        (tmp_path / "node.toml").write_text(config)
        flags += ["--config", str(tmp_path / "node.toml")]
    return subprocess.run(
        [sys.executable, "-m", "node_adapter.cli", "node", "--data-dir", str(tmp_path / "data"), *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("config", "flags", "line"),
    [
        ('http_port = "20x20"\n', [], "http_port = '20x20' (in "),
        ("", ["--http-port", "99999"], "--http-port 99999: Input should be less than or equal to 65535"),
        ("", ["--log-level", "LOUD"], "--log-level 'LOUD': must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ('mdns = "false"\n', [], "mdns = 'false' (in "),
        ('network_key = "abc"\n', [], "network_key = 'abc' (in "),
        ('peers = ["nowhere"]\n', [], "peer 'nowhere' is not <node key>@host:port"),
        ('peers = ["127.0.0.1:2022"]\n', [], "peer '127.0.0.1:2022' has no node key: write it as <node key>@"),
        ("", ["--peer", "localhost:2022"], "--peer ['localhost:2022']: peer 'localhost:2022' has no node key"),
        ("", ["--peer", "abcd@localhost:2022"], "'abcd' is not a node key (64 hex digits of an Ed25519 public key)"),
        ('allowed_origins = ["*"]\n', [], "'*' is not an origin like http://localhost:5173"),
        ("[http_limits]\nmax_connections = -1\n", [], "http_limits.max_connections = -1 (in "),
        ("[graphql_limits]\nmax_cost = 0\n", [], "graphql_limits.max_cost = 0 (in "),
        ('[graphql_limits]\ntime_budget = "5s"\n', [], "graphql_limits.time_budget = '5s' (in "),
        ("[graphql_limits]\nmax_depht = 3\n", [], "unknown keys in "),
        ("[client_limits]\nmax_requests = 0\n", [], "client_limits.max_requests = 0 (in "),
        ("[client_limits]\ntime_rate = -0.5\n", [], "client_limits.time_rate = -0.5 (in "),
        ("", ["--mdns"], "mdns is on but replication_host '127.0.0.1' is reachable from this machine only"),
        ("colour = 1\n", [], "unknown keys in "),
    ],
)
def test_a_bad_value_is_named_without_a_traceback(tmp_path: Path, config: str, flags: list[str], line: str) -> None:
    # Free ports unless the case is about the port: a setting wrongly accepted starts a node, which fails the
    # test by its timeout rather than by clashing with a real node on 2020.
    free = [] if "http_port" in config or "--http-port" in flags else ["--http-port", "0"]
    result = panda_node(tmp_path, "--replication-port", "0", *free, *flags, config=config or None)
    assert result.returncode == 1, result.stderr
    assert line in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()


def test_every_bad_value_is_reported_at_once(tmp_path: Path) -> None:
    result = panda_node(tmp_path, "--log-level", "LOUD", config='http_port = "20x20"\nmdns = "false"\n')
    assert result.returncode == 1
    assert "3 bad settings" in result.stderr
    problems = [line for line in result.stderr.splitlines() if line.startswith("  ")]
    assert [p.split()[0] for p in problems] == ["http_port", "mdns", "--log-level"], problems


def test_a_non_number_port_flag_is_refused_by_the_parser(tmp_path: Path) -> None:
    result = panda_node(tmp_path, "--http-port", "20x20")
    assert result.returncode == 2
    assert "argument --http-port: invalid int value: '20x20'" in result.stderr
    assert "Traceback" not in result.stderr
