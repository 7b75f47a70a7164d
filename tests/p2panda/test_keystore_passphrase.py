"""A passphrase seals the identity at rest: a stolen data directory shows no key bytes, the right passphrase
opens it, a wrong or missing one is a typed error that changes nothing (also through `panda key`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from p2panda.keystore import (
    KeyStoreError,
    PassphraseRequired,
    WrongPassphrase,
    create_identity,
    identity_path,
    load_identity,
    read_passphrase,
)


def panda(*args: str, passphrase: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "P2PANDA_PASSPHRASE"}
    if passphrase is not None:
        env["P2PANDA_PASSPHRASE"] = passphrase
    return subprocess.run([sys.executable, "-m", "p2panda.cli", *args], capture_output=True, text=True, env=env)


def test_a_stolen_sealed_identity_shows_no_key_bytes(tmp_path: Path) -> None:
    key_pair = create_identity(tmp_path, passphrase=b"correct horse")
    raw = identity_path(tmp_path).read_bytes()
    seed = key_pair.private_key()
    for form in (seed, seed.hex().encode(), seed[:8], seed.hex()[:16].encode()):
        assert form not in raw
    assert raw.startswith(b"p2panda-sealed-key v1 ")
    assert load_identity(tmp_path, b"correct horse").private_key() == seed


def test_wrong_or_missing_passphrase_is_typed_and_changes_nothing(tmp_path: Path) -> None:
    create_identity(tmp_path, passphrase=b"correct horse")
    before = identity_path(tmp_path).read_bytes()
    with pytest.raises(WrongPassphrase, match="the passphrase does not open key file"):
        load_identity(tmp_path, b"battery staple")
    with pytest.raises(PassphraseRequired, match="is sealed with a passphrase"):
        load_identity(tmp_path)
    assert identity_path(tmp_path).read_bytes() == before


def test_a_damaged_sealed_file_is_refused_by_name(tmp_path: Path) -> None:
    create_identity(tmp_path, passphrase=b"pw")
    path = identity_path(tmp_path)
    parts = path.read_text().split(" ")
    path.write_text(" ".join([*parts[:3], "99999999999999999999", *parts[4:]]))
    with pytest.raises(KeyStoreError, match="is a damaged sealed key") as info:
        load_identity(tmp_path, b"pw")
    assert type(info.value) is KeyStoreError
    parts[-1] = ("00" if parts[-1][:2] != "00" else "11") + parts[-1][2:]  # a flipped byte of the box
    path.write_text(" ".join(parts))
    with pytest.raises(WrongPassphrase):
        load_identity(tmp_path, b"pw")


def test_passphrase_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("P2PANDA_PASSPHRASE", raising=False)
    assert read_passphrase(None) is None
    monkeypatch.setenv("P2PANDA_PASSPHRASE", "from env")
    assert read_passphrase(None) == b"from env"
    (tmp_path / "pw").write_bytes(b"from file\nignored\n")
    assert read_passphrase(tmp_path / "pw") == b"from file"
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(KeyStoreError, match="is empty"):
        read_passphrase(tmp_path / "empty")
    with pytest.raises(KeyStoreError, match="cannot be read"):
        read_passphrase(tmp_path / "missing")


def test_panda_key_with_a_passphrase(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    (tmp_path / "pw").write_text("correct horse\n")
    created = panda("--data-dir", data, "key", "new", "--passphrase-file", str(tmp_path / "pw"))
    assert created.returncode == 0, created.stderr
    public_key = created.stdout.strip()
    assert public_key.encode() not in identity_path(Path(data)).read_bytes()
    assert panda("--data-dir", data, "key", "show", passphrase="correct horse").stdout.strip() == public_key
    wrong = panda("--data-dir", data, "key", "show", passphrase="battery staple")
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
    assert wrong.stderr.startswith("panda: the passphrase does not open key file")
    missing = panda("--data-dir", data, "key", "show")
    assert missing.returncode == 1 and "is sealed with a passphrase" in missing.stderr
