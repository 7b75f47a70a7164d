"""`panda node`: a standalone node with its HTTP API until SIGINT/SIGTERM.

Configuration comes from `--config node.toml` (keys: `database_url`, `http_port`, `http_host`,
`data_dir`, `allow_schema_ids` ("*" or a list of schema ids, as in aquadoggo), `bundles` (paths of
bundle files, relative to the config file)), overridden by command-line flags. Logs go to stderr.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import tomllib
from collections.abc import Callable
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
    allow_schema_ids: frozenset[str] | None = None
    bundles: tuple[Path, ...] = ()


def load_settings(
    config_file: Path | None, data_dir: Path, database_url: str | None, http_port: int | None
) -> NodeSettings:
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            values = tomllib.loads(config_file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise NodeError(f"cannot read config {config_file}: {exc}") from exc
    unknown = set(values) - {"database_url", "http_port", "http_host", "data_dir", "allow_schema_ids", "bundles"}
    if unknown:
        raise NodeError(f"unknown keys in {config_file}: {sorted(unknown)}")
    allow = values.get("allow_schema_ids", "*")
    if allow != "*" and not (isinstance(allow, list) and all(isinstance(a, str) for a in allow)):
        raise NodeError(f'allow_schema_ids in {config_file} must be "*" or a list of schema ids, not {allow!r}')
    bundles = values.get("bundles", [])
    if not (isinstance(bundles, list) and all(isinstance(b, str) for b in bundles)):
        raise NodeError(f"bundles in {config_file} must be a list of paths, not {bundles!r}")
    base = config_file.parent if config_file is not None else Path.cwd()
    return NodeSettings(
        allow_schema_ids=None if allow == "*" else frozenset(allow),
        bundles=tuple(base / b for b in bundles),
        data_dir=Path(values.get("data_dir", data_dir)),
        database_url=database_url or values.get("database_url"),
        http_host=str(values.get("http_host", "127.0.0.1")),
        http_port=int(http_port if http_port is not None else values.get("http_port", DEFAULT_HTTP_PORT)),
    )


async def run_node(settings: NodeSettings, configure: Callable[[NodeConfig], NodeConfig] | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    config = NodeConfig(settings.data_dir, settings.database_url, settings.allow_schema_ids, settings.bundles)
    node = Node(configure(config) if configure is not None else config)
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
