"""`panda node`: a standalone node with its HTTP API until SIGINT/SIGTERM.

Configuration comes from `--config node.toml` (keys: `database_url`, `http_port`, `http_host`,
`data_dir`), overridden by command-line flags. Logs go to stderr.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2panda.node.api import GraphQLApi, HttpServer
from p2panda.node.errors import NodeError
from p2panda.node.node import Node, NodeConfig

__all__ = ["NodeSettings", "load_settings", "run_node"]

log = logging.getLogger("p2panda.node")
DEFAULT_HTTP_PORT = 2020


@dataclass(frozen=True, slots=True)
class NodeSettings:
    data_dir: Path
    database_url: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = DEFAULT_HTTP_PORT


def load_settings(
    config_file: Path | None, data_dir: Path, database_url: str | None, http_port: int | None
) -> NodeSettings:
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            values = tomllib.loads(config_file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise NodeError(f"cannot read config {config_file}: {exc}") from exc
    unknown = set(values) - {"database_url", "http_port", "http_host", "data_dir"}
    if unknown:
        raise NodeError(f"unknown keys in {config_file}: {sorted(unknown)}")
    return NodeSettings(
        data_dir=Path(values.get("data_dir", data_dir)),
        database_url=database_url or values.get("database_url"),
        http_host=str(values.get("http_host", "127.0.0.1")),
        http_port=int(http_port if http_port is not None else values.get("http_port", DEFAULT_HTTP_PORT)),
    )


async def run_node(settings: NodeSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    node = Node(NodeConfig(settings.data_dir, settings.database_url))
    await node.start()
    server = HttpServer(GraphQLApi(node), settings.http_host, settings.http_port)
    try:
        await server.start()
        log.info("node ready: http://%s:%d/graphql", settings.http_host, server.port)
        await stop.wait()
        log.info("shutting down")
    finally:
        await server.stop()
        await node.stop()
