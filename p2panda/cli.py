"""The `panda` command: `panda key new|show` (more subcommands arrive with the node and the chat)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from p2panda.keystore import (
    KeyStoreError,
    create_identity,
    default_data_dir,
    identity_path,
    load_identity,
    read_passphrase,
)
from p2panda.node.node import NodeConfig

__all__ = ["main"]

if TYPE_CHECKING:
    from p2panda.node.node import NodeConfig

    Configure = Callable[[NodeConfig], NodeConfig]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="panda", description="p2panda identities, node and chat")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help=f"where identity and data live (default {default_data_dir()})"
    )
    # Accept --data-dir after the subcommand too (`panda key show --data-dir D`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument(
        "--passphrase-file",
        type=Path,
        default=None,
        help="seal / open the identity with the passphrase in this file (or set P2PANDA_PASSPHRASE)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    key = commands.add_parser("key", help="manage your identity (an Ed25519 key pair)")
    key_commands = key.add_subparsers(dest="key_command", required=True)
    new = key_commands.add_parser("new", parents=[common], help="create a new identity")
    new.add_argument("--force", action="store_true", help="replace an existing identity (its key is lost)")
    key_commands.add_parser("show", parents=[common], help="print the public key of your identity")
    node = commands.add_parser("node", parents=[common], help="run a standalone node with its GraphQL API")
    node.add_argument(
        "--database", metavar="URL", help="sqlite:///FILE or postgresql://... (default: a file in --data-dir)"
    )
    node.add_argument(
        "--http-port", type=int, default=None, help="GraphQL HTTP port (default 2020; 0 picks a free one)"
    )
    node.add_argument(
        "--replication-port", type=int, default=None, help="node-to-node port (default 2022; 0 picks a free one)"
    )
    node.add_argument(
        "--replication-host",
        default=None,
        help="address for node-to-node connections (default 127.0.0.1: this machine only; 0.0.0.0: every network)",
    )
    node.add_argument(
        "--peer",
        action="append",
        default=[],
        help="<node key>@host:port of a node to replicate with (repeatable; that node's --print-address)",
    )
    node.add_argument(
        "--print-address",
        action="store_true",
        help="print this node's peer address (<node key>@host:port, for others' --peer) and exit",
    )
    node.add_argument("--network-key", help="64 hex digits: a private network (default: the public one)")
    mdns = node.add_mutually_exclusive_group()
    mdns.add_argument(
        "--mdns",
        dest="mdns",
        action="store_true",
        default=None,
        help="announce this node and find peers on the local network (off by default)",
    )
    mdns.add_argument("--no-mdns", dest="mdns", action="store_false", help="no mDNS (the default)")
    node.add_argument("--config", type=Path, default=None, help="node.toml (keys: see the README)")
    node.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING, ERROR or CRITICAL")
    return parser


def main(argv: Sequence[str] | None = None, *, configure: Configure | None = None) -> int:
    """`panda`; `configure` adapts the node config (the application layer plugs in its policy there)."""
    args = _parser().parse_args(argv)
    data_dir: Path = args.data_dir or default_data_dir()
    try:
        if args.command == "key" and args.key_command == "new":
            key_pair = create_identity(data_dir, overwrite=args.force, passphrase=read_passphrase(args.passphrase_file))
            print(key_pair.public_key.hex())
            print(f"identity written to {identity_path(data_dir)}", file=sys.stderr)
            return 0
        if args.command == "key" and args.key_command == "show":
            print(load_identity(data_dir, read_passphrase(args.passphrase_file)).public_key.hex())
            return 0
        if args.command == "node":
            return _run_node(args, data_dir, configure)
    except KeyStoreError as exc:
        print(f"panda: {exc}", file=sys.stderr)
        return 1
    return 2


def _run_node(args: argparse.Namespace, data_dir: Path, configure: Configure | None) -> int:
    import asyncio
    import logging

    from p2panda.node.errors import NodeError
    from p2panda.node.run import load_settings, peer_address, run_node, wildcard_hint

    try:
        settings = load_settings(
            args.config,
            data_dir,
            args.database,
            args.http_port,
            replication_port=args.replication_port,
            replication_host=args.replication_host,
            peers=args.peer,
            network_key=args.network_key,
            mdns=args.mdns,
            log_level=args.log_level,
        )
        if args.print_address:
            if settings.replication_port == 0:
                print(
                    "panda node: the replication port is 0 (a free one is picked at each start), so the address is "
                    "known only then: the node logs it as 'peer address: ...'; give --replication-port to fix it",
                    file=sys.stderr,
                )
                return 1
            print(peer_address(settings))
            if wildcard_hint(settings.replication_host):
                print(
                    f"panda node: replace {settings.replication_host or '0.0.0.0'} with this machine's address on "
                    "the peer's network",
                    file=sys.stderr,
                )
            return 0
        logging.basicConfig(
            level=settings.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        asyncio.run(run_node(settings, configure))
    except NodeError as exc:
        print(f"panda node: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"panda node: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
