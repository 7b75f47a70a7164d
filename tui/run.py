"""`panda chat`: make or load the identity, start the node (embedded, or a remote one), the client and the
chat, and run the app in the same event loop. Logs go to `<data dir>/chat.log`, never to the screen."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from node_adapter import Client, EmbeddedNode, Node, RemoteNode
from node_adapter.chat import Chat
from p2panda.identity import KeyPair
from p2panda.keystore import create_identity, default_data_dir, identity_path, load_identity, read_passphrase
from tui.app import ChatApp
from tui.log_format import LOG_FORMAT, PUBLIC, WithheldValuesFormatter

__all__ = ["chat_parser", "run_chat", "main", "DEFAULT_REPLICATION_PORT"]

DEFAULT_REPLICATION_PORT = 2022
log = logging.getLogger("tui")


def chat_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="panda chat", description="end-to-end encrypted group chat in the terminal")
    parser.add_argument("--data-dir", type=Path, default=None, help=f"identity and data (default {default_data_dir()})")
    parser.add_argument(
        "--passphrase-file",
        type=Path,
        default=None,
        help="seal / open the identity and encrypt the chat's state with the passphrase in this file "
        "(or set P2PANDA_PASSPHRASE)",
    )
    parser.add_argument("--name", default=None, help="your display name (asked at first start otherwise)")
    parser.add_argument(
        "--replication-port",
        type=int,
        default=None,
        help=f"node-to-node port on 127.0.0.1 (default {DEFAULT_REPLICATION_PORT}, or a free one when taken)",
    )
    parser.add_argument(
        "--peer",
        action="append",
        default=[],
        help="<node key>@host:port of a node to replicate with (`panda node --print-address` prints a node's)",
    )
    parser.add_argument("--no-mdns", dest="mdns", action="store_false", default=False, help="no mDNS (the default)")
    parser.add_argument("--mdns", dest="mdns", action="store_true", help="find peers on the local network")
    parser.add_argument("--network-key", default=None, help="64 hex digits: a private network")
    parser.add_argument(
        "--node", default=None, metavar="URL", help="use a `panda node` at URL instead of an embedded one"
    )
    return parser


def _identity(data_dir: Path, passphrase: bytes | None) -> KeyPair:
    if identity_path(data_dir).exists():
        return load_identity(data_dir, passphrase)
    return create_identity(data_dir, passphrase=passphrase)


def _log_to_file(data_dir: Path) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data_dir / "chat.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    return path


async def _start_node(args: argparse.Namespace, data_dir: Path, stack: contextlib.AsyncExitStack) -> Node:
    if args.node:
        return await stack.enter_async_context(RemoteNode(args.node))
    network_key = bytes.fromhex(args.network_key) if args.network_key else None
    port = DEFAULT_REPLICATION_PORT if args.replication_port is None else args.replication_port
    node = EmbeddedNode(data_dir, replication_port=port, peers=args.peer, network_key=network_key, mdns=args.mdns)
    try:
        return await stack.enter_async_context(node)
    except OSError as exc:
        if args.replication_port is not None:
            raise
        log.info("port %d is taken (%s): replicating on a free port", port, exc)
        node = EmbeddedNode(data_dir, replication_port=0, peers=args.peer, network_key=network_key, mdns=args.mdns)
        return await stack.enter_async_context(node)


async def run_chat(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir or default_data_dir()
    log_path = _log_to_file(data_dir)
    passphrase = read_passphrase(args.passphrase_file)
    if passphrase is not None:  # the state is encrypted: the log beside it names no values
        for handler in logging.getLogger().handlers:
            handler.setFormatter(WithheldValuesFormatter(LOG_FORMAT))
    key_pair = _identity(data_dir, passphrase)
    async with contextlib.AsyncExitStack() as stack:
        node = await _start_node(args, data_dir, stack)
        state = data_dir / f"client-{key_pair.public_key.hex()[:16]}.sqlite3"
        client = await stack.enter_async_context(
            Client(node, key_pair, state_path=state, passphrase=passphrase, sync_in_background=True)
        )
        chat = await stack.enter_async_context(Chat(client))
        app = ChatApp(chat, name=args.name, data_dir=data_dir)
        if isinstance(node, EmbeddedNode) and node.replication is not None:
            log.info("peer address: %s", node.replication.address, extra=PUBLIC)
        log.info("panda chat started for %s (log %s)", client.me, log_path, extra=PUBLIC)
        await app.run_async()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = chat_parser().parse_args(argv)
    try:
        return asyncio.run(run_chat(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # before or after the screen: one line, the details in the log
        logging.getLogger("tui").exception("panda chat failed")
        print(f"panda chat: {exc} (details in chat.log in the data directory)", file=sys.stderr)
        return 1
