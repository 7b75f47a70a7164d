from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

REPO_ROOT = Path(__file__).resolve().parent.parent
VECTORS_PATH = REPO_ROOT.parent / "shared" / "vectors" / "core.json"

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    with VECTORS_PATH.open() as f:
        data: dict[str, Any] = json.load(f)
    return data
