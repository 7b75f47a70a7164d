"""The dependency direction p2panda <- keygroups <- secret_group <- node_adapter <- tui, checked on imports."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["p2panda", "keygroups", "secret_group", "node_adapter", "tui"]


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_layers_import_only_lower_layers() -> None:
    checked = 0
    for rank, layer in enumerate(LAYERS):
        higher = set(LAYERS[rank + 1 :])
        for path in (ROOT / layer).rglob("*.py") if (ROOT / layer).is_dir() else []:
            checked += 1
            wrong = imported_packages(path) & higher
            assert not wrong, f"{path.relative_to(ROOT)} imports higher layer(s) {sorted(wrong)}"
    assert checked > 0


def test_node_never_imports_group_packages() -> None:
    node_dir = ROOT / "p2panda" / "node"
    for path in node_dir.rglob("*.py") if node_dir.is_dir() else []:
        assert not imported_packages(path) & {"keygroups", "secret_group"}, path
