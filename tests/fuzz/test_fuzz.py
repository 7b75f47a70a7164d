"""The short fuzz run of the test suite: every target under atheris for a few seconds
(`P2PANDA_FUZZ_SECONDS`, default 2), from its seeds. `make fuzz` runs them for longer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.targets import TARGETS, check

SECONDS = int(os.environ.get("P2PANDA_FUZZ_SECONDS", "2"))
ROOT = Path(__file__).resolve().parents[2]


def fuzz(target: str, tmp_path: Path, seconds: int, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz.run",
            target,
            str(tmp_path / "corpus"),
            f"-max_total_time={seconds}",
            f"-artifact_prefix={tmp_path}/",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_decode_or_fail_as_allowed(name: str) -> None:
    for seed in TARGETS[name].seeds():
        check(TARGETS[name], seed)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_short_fuzz_run_finds_no_crash(name: str, tmp_path: Path) -> None:
    result = fuzz(name, tmp_path, SECONDS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done" in result.stderr
    assert not list(tmp_path.glob("crash-*"))


def test_a_crash_stops_the_run_and_is_written_out(tmp_path: Path) -> None:
    # Positive control: a decoder that raises KeyError on inputs starting with "K".
    result = fuzz("broken", tmp_path, 60, P2PANDA_FUZZ_SELFTEST="1")
    assert result.returncode != 0
    assert "UnexpectedError: KeyError: 'missing'" in result.stdout + result.stderr
    (crash,) = tmp_path.glob("crash-*")
    assert crash.read_bytes()[:1] == b"K"
