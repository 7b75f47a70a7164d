"""`panda key new|show` as a user runs it: a real subprocess and a real data directory."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from p2panda import KeyPair


def panda(*args: str, env_home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if env_home is not None:
        env["HOME"] = str(env_home)
        env["XDG_DATA_HOME"] = str(env_home / "data")
    return subprocess.run(
        [sys.executable, "-m", "p2panda.cli", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_key_new_then_show(tmp_path: Path) -> None:
    created = panda("--data-dir", str(tmp_path), "key", "new")
    assert created.returncode == 0, created.stderr
    public_key = created.stdout.strip()
    path = tmp_path / "identity.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    seed = bytes.fromhex(path.read_text().strip())
    assert KeyPair.from_private_key(seed).public_key.hex() == public_key
    shown = panda("key", "show", "--data-dir", str(tmp_path))
    assert shown.returncode == 0 and shown.stdout.strip() == public_key


def test_key_new_refuses_to_overwrite(tmp_path: Path) -> None:
    first = panda("--data-dir", str(tmp_path), "key", "new").stdout.strip()
    again = panda("--data-dir", str(tmp_path), "key", "new")
    assert again.returncode == 1 and "refusing to overwrite" in again.stderr
    assert panda("--data-dir", str(tmp_path), "key", "show").stdout.strip() == first
    forced = panda("--data-dir", str(tmp_path), "key", "new", "--force")
    assert forced.returncode == 0 and forced.stdout.strip() != first


def test_key_show_without_identity(tmp_path: Path) -> None:
    shown = panda("--data-dir", str(tmp_path / "nothing"), "key", "show")
    assert shown.returncode == 1 and "panda key new" in shown.stderr


def test_key_show_refuses_world_readable_identity(tmp_path: Path) -> None:
    panda("--data-dir", str(tmp_path), "key", "new")
    (tmp_path / "identity.key").chmod(0o644)
    shown = panda("--data-dir", str(tmp_path), "key", "show")
    assert shown.returncode == 1 and "accessible by others" in shown.stderr


def test_default_data_dir_is_in_the_users_data_directory(tmp_path: Path) -> None:
    created = panda("key", "new", env_home=tmp_path)
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "data" / "panda" / "identity.key").exists()
