from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.p2panda.node.process import PandaNode

StartNode = Callable[..., PandaNode]


@pytest.fixture
def start_node(tmp_path: Path) -> Iterator[StartNode]:
    """`start_node(config_toml="", *flags, name="node")`: a real `panda node` process on free ports."""
    started: list[PandaNode] = []

    def start(config: str = "", *flags: str, name: str = "node", prefix: list[str] | None = None) -> PandaNode:
        extra = list(flags)
        if config:
            path = tmp_path / f"{name}.toml"
            path.write_text(config)
            extra += ["--config", str(path)]
        process = PandaNode(tmp_path / name, extra=extra, prefix=prefix)
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.proc is not None:
            process.kill()
