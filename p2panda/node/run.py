"""`panda node`: a standalone node with its HTTP API until SIGINT/SIGTERM.

Configuration comes from `--config node.toml` (keys: `database_url`, `http_port`, `http_host`,
`data_dir`, `allow_schema_ids` ("*" or a list of schema ids, as in aquadoggo), `bundles` (paths of
bundle files, relative to the config file), `replication_port`, `replication_host`, `peers` (list of
"host:port"), `network_key` (64 hex digits), `mdns` (bool)), overridden by command-line flags. Logs go to
stderr. The node's transport key is the identity in the data directory (created on first start).
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

from p2panda.errors import P2PandaError
from p2panda.keystore import create_identity, identity_path, load_identity
from p2panda.node.api import GraphQLApi, HttpServer
from p2panda.node.errors import NodeError
from p2panda.node.node import Node, NodeConfig
from p2panda.node.replication import Peer, Replication, ReplicationConfig
from p2panda.node.transport import DEFAULT_NETWORK_KEY

__all__ = ["NodeSettings", "load_settings", "run_node"]

log = logging.getLogger("p2panda.node")
DEFAULT_HTTP_PORT = 2020
DEFAULT_REPLICATION_PORT = 2022


@dataclass(frozen=True, slots=True)
class NodeSettings:
    data_dir: Path
    database_url: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = DEFAULT_HTTP_PORT
    allow_schema_ids: frozenset[str] | None = None
    bundles: tuple[Path, ...] = ()
    replication_host: str = "0.0.0.0"
    replication_port: int = DEFAULT_REPLICATION_PORT
    peers: tuple[Peer, ...] = ()
    network_key: bytes = DEFAULT_NETWORK_KEY
    mdns: bool = True


_KEYS = {
    "database_url",
    "http_port",
    "http_host",
    "data_dir",
    "allow_schema_ids",
    "bundles",
    "replication_port",
    "replication_host",
    "peers",
    "network_key",
    "mdns",
}


def load_settings(
    config_file: Path | None,
    data_dir: Path,
    database_url: str | None,
    http_port: int | None,
    *,
    replication_port: int | None = None,
    peers: list[str] | None = None,
    network_key: str | None = None,
    mdns: bool | None = None,
) -> NodeSettings:
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            values = tomllib.loads(config_file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise NodeError(f"cannot read config {config_file}: {exc}") from exc
    unknown = set(values) - _KEYS
    if unknown:
        raise NodeError(f"unknown keys in {config_file}: {sorted(unknown)}")
    allow = values.get("allow_schema_ids", "*")
    if allow != "*" and not (isinstance(allow, list) and all(isinstance(a, str) for a in allow)):
        raise NodeError(f'allow_schema_ids in {config_file} must be "*" or a list of schema ids, not {allow!r}')
    bundles = values.get("bundles", [])
    if not (isinstance(bundles, list) and all(isinstance(b, str) for b in bundles)):
        raise NodeError(f"bundles in {config_file} must be a list of paths, not {bundles!r}")
    base = config_file.parent if config_file is not None else Path.cwd()
    peer_texts = [*values.get("peers", []), *(peers or [])]
    try:
        parsed_peers = tuple(Peer.parse(str(p)) for p in peer_texts)
    except (ValueError, P2PandaError) as exc:
        raise NodeError(str(exc)) from exc
    key_text = network_key or values.get("network_key")
    try:
        key = bytes.fromhex(key_text) if key_text else DEFAULT_NETWORK_KEY
    except ValueError:
        key = b""
    if len(key) != 32:
        raise NodeError(f"network key {key_text!r} is not 64 hex digits")
    return NodeSettings(
        allow_schema_ids=None if allow == "*" else frozenset(allow),
        bundles=tuple(base / b for b in bundles),
        data_dir=Path(values.get("data_dir", data_dir)),
        database_url=database_url or values.get("database_url"),
        http_host=str(values.get("http_host", "127.0.0.1")),
        http_port=int(http_port if http_port is not None else values.get("http_port", DEFAULT_HTTP_PORT)),
        replication_host=str(values.get("replication_host", "0.0.0.0")),
        replication_port=int(
            replication_port
            if replication_port is not None
            else values.get("replication_port", DEFAULT_REPLICATION_PORT)
        ),
        peers=parsed_peers,
        network_key=key,
        mdns=bool(mdns if mdns is not None else values.get("mdns", True)),
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
    key_pair = load_identity(settings.data_dir) if identity_path(settings.data_dir).exists() else None
    if key_pair is None:
        key_pair = create_identity(settings.data_dir)
    replication = Replication(
        node,
        ReplicationConfig(
            key_pair,
            settings.replication_host,
            settings.replication_port,
            settings.network_key,
            settings.peers,
            mdns=settings.mdns,
        ),
    )
    try:
        await replication.start()
        log.info("replication ready: port %d, node %s", replication.port, key_pair.public_key.hex())
        await server.start()
        log.info("node ready: http://%s:%d/graphql", settings.http_host, server.port)
        await stop.wait()
        log.info("shutting down")
    finally:
        await server.stop()
        await replication.stop()
        await node.stop()
