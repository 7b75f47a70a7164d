"""`panda node`: a standalone node with its HTTP API and replication until SIGINT/SIGTERM.

Settings come from `--config node.toml` and flags (`settings.py`). Logs go to stderr. Every listener binds
127.0.0.1 unless told otherwise; mDNS is off unless asked for. The node's transport key is `node.key` in
the data directory (created on first start), not the user's identity: peers and the local network see a
key that says nothing about who uses the node.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from p2panda.keystore import load_or_create_node_key
from p2panda.node.api import GraphQLApi, HttpServer
from p2panda.node.api.limits import RateLimitedErrors
from p2panda.node.node import Node, NodeConfig
from p2panda.node.peer import Peer
from p2panda.node.replication import Replication, ReplicationConfig
from p2panda.node.settings import NodeSettings, SettingsError, load_settings

__all__ = ["NodeSettings", "SettingsError", "load_settings", "peer_address", "run_node", "wildcard_hint"]

log = logging.getLogger("p2panda.node")


def wildcard_hint(host: str) -> str:
    if host in ("", "0.0.0.0", "::"):
        return f" (put this machine's address on the peer's network in place of {host or '0.0.0.0'})"
    return ""


def peer_address(settings: NodeSettings) -> str:
    """`<node key>@host:port` of the node these settings run (the node key is made if there is none yet),
    for `panda node --print-address`."""
    key = load_or_create_node_key(settings.data_dir).public_key
    return str(Peer(settings.replication_host, settings.replication_port, key))


async def run_node(settings: NodeSettings, configure: Callable[[NodeConfig], NodeConfig] | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.set_exception_handler(RateLimitedErrors())
    config = NodeConfig(settings.data_dir, settings.database_url, settings.allow_schema_ids, settings.bundles)
    node = Node(configure(config) if configure is not None else config)
    await node.start()  # holds the data directory's lock from here on
    server = HttpServer(
        GraphQLApi(node, settings.graphql_limits),
        settings.http_host,
        settings.http_port,
        limits=settings.http_limits,
        browsers=settings.browsers,
        clients=settings.client_limits,
    )
    try:
        key_pair = load_or_create_node_key(settings.data_dir)
    except BaseException:
        await node.stop()
        raise
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
        log.info("peer address: %s%s", replication.address, wildcard_hint(settings.replication_host))
        await server.start()
        log.info("node ready: http://%s:%d/graphql", settings.http_host, server.port)
        await stop.wait()
        log.info("shutting down")
    finally:
        await server.stop()
        await replication.stop()
        await node.stop()
