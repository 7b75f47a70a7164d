"""Issue 3's scenario, each step in a fresh process restoring every member from a SQLite file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from p2panda import KeyPair

from .scenario import SEEDS, STEPS

ROOT = Path(__file__).resolve().parents[2]


def pk(name: str) -> str:
    return KeyPair.from_private_key(SEEDS[name]).public_key.hex()


def run(db: Path, step: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.secret_group.scenario", str(db), step],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"step {step} failed:\n{proc.stderr}"
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def all_equal(values: dict[str, str]) -> bool:
    return len(set(values.values())) == 1


def test_scenario_in_fresh_processes(tmp_path: Path) -> None:
    db = tmp_path / "members.sqlite"
    results = {step: run(db, step) for step in STEPS}

    assert results["create_and_add"]["epoch"] == 1
    joined = results["join"]
    assert all_equal(joined["authenticators"])
    # The credential identity of every member is its p2panda public key.
    for name in "ABC":
        assert sorted(joined["members"][name]) == sorted([pk("A"), pk("B"), pk("C")])

    received = results["chat"]["received"]
    assert received["A"] == {"B": "hello from B", "C": "hello from C"}
    assert received["B"] == {"A": "hello from A", "C": "hello from C"}
    assert received["C"] == {"A": "hello from A", "B": "hello from B"}

    removal = results["remove_c"]
    assert removal["b_kind"] == "commit" and removal["c_still_member"] is False
    assert all_equal(removal["authenticators"])
    assert sorted(removal["members"]) == sorted([pk("A"), pk("B")])

    after = results["after_removal"]
    assert after["b_plaintext"] == "C must not read this"
    assert after["c_error"] is not None

    update = results["b_self_update"]
    assert update["a_kind"] == "commit" and all_equal(update["authenticators"])
    assert update["authenticators"]["A"] != update["before"]

    proposal = results["b_proposes_d"]
    assert proposal["a_kind"] == "proposal" and proposal["b_kind"] == "commit"
    assert all_equal(proposal["authenticators"])

    final = results["d_chats"]
    assert final["A"] == final["B"] == "hi, I am D"
    assert final["members"] == sorted([pk("A"), pk("B"), pk("D")])
