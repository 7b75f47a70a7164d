"""`panda node`'s settings: `node.toml` and command-line flags, parsed into one typed model (pydantic).

A flag overrides the same key of the file. Every bad value is reported, all at once, each naming its key,
where it came from and the value, and nothing starts:

- C1 unknown keys are refused.
- C2 types are strict: `mdns = "false"` is a string, not a bool; `http_port = "20x20"` is not a number.
- C3 ports are 0-65535 (0 picks a free one); limits are positive (`max_aliases` and `parse_cache_bytes`
  may be 0).
- C4 the log level is one of DEBUG, INFO, WARNING, ERROR, CRITICAL (any case).
- C5 peers are `<node key>@host:port` (`peer.py`: a peer without its node key cannot be dialled); the network
  key is 64 hex digits.
- C6 allowed origins are `http(s)://host[:port]`; allowed hosts are host names.
- C7 mDNS announces the replication address to the local network, so it needs a replication host that
  is not loopback-only.

Pydantic rather than hand checks: it reports every failing value at once with its location, strict mode
refuses the silent coercions (`"false"` -> True) that made `mdns = "false"` mean on, and it is widely used
and maintained. (msgspec is faster but stops at the first error; speed is irrelevant for a config file.)
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from p2panda.node.api.browser import BrowserPolicy
from p2panda.node.api.cost import GraphQLLimits
from p2panda.node.api.fairness import ClientLimits
from p2panda.node.api.limits import HttpLimits
from p2panda.node.errors import NodeError
from p2panda.node.peer import Peer, PeerAddressError
from p2panda.node.transport import DEFAULT_NETWORK_KEY

__all__ = ["NodeSettings", "SettingsError", "load_settings"]

DEFAULT_HTTP_PORT = 2020
DEFAULT_REPLICATION_PORT = 2022
LOOPBACK = "127.0.0.1"

Port = Annotated[int, Field(ge=0, le=65535)]
Positive = Annotated[int, Field(gt=0)]
Seconds = Annotated[float, Field(gt=0)]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
_ORIGIN = re.compile(r"https?://[a-z0-9.\-]+(:[0-9]{1,5})?|https?://\[[0-9a-f:.]+\](:[0-9]{1,5})?")
_HOST = re.compile(r"[a-z0-9]([a-z0-9\-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9\-]*[a-z0-9])?)*")


class SettingsError(NodeError):
    """One or more bad settings; `problems` lists one line per bad value."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        count = f"{len(problems)} bad settings" if len(problems) > 1 else "bad setting"
        super().__init__(f"{count}:\n  " + "\n  ".join(problems))


@dataclass(frozen=True, slots=True)
class NodeSettings:
    data_dir: Path
    database_url: str | None = None
    http_host: str = LOOPBACK
    http_port: int = DEFAULT_HTTP_PORT
    allow_schema_ids: frozenset[str] | None = None
    bundles: tuple[Path, ...] = ()
    replication_host: str = LOOPBACK
    replication_port: int = DEFAULT_REPLICATION_PORT
    peers: tuple[Peer, ...] = ()
    network_key: bytes = DEFAULT_NETWORK_KEY
    mdns: bool = False
    log_level: str = "INFO"
    browsers: BrowserPolicy = field(default_factory=BrowserPolicy)
    http_limits: HttpLimits = field(default_factory=HttpLimits)
    graphql_limits: GraphQLLimits = field(default_factory=GraphQLLimits)
    client_limits: ClientLimits = field(default_factory=ClientLimits)


_LIMITS = HttpLimits()
_GRAPHQL = GraphQLLimits()
_CLIENTS = ClientLimits()


class _HttpLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    max_connections: Positive = _LIMITS.max_connections
    max_websockets: Positive = _LIMITS.max_websockets
    max_subscriptions: Positive = _LIMITS.max_subscriptions
    max_body: Positive = _LIMITS.max_body
    # Seconds may be written as integers in TOML (`header_timeout = 5`).
    header_timeout: Annotated[Seconds, Field(strict=False)] = _LIMITS.header_timeout
    body_timeout: Annotated[Seconds, Field(strict=False)] = _LIMITS.body_timeout
    idle_timeout: Annotated[Seconds, Field(strict=False)] = _LIMITS.idle_timeout
    send_timeout: Annotated[Seconds, Field(strict=False)] = _LIMITS.send_timeout
    max_queued_bytes: Positive = _LIMITS.max_queued_bytes


class _GraphQLLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    max_query_bytes: Positive = _GRAPHQL.max_query_bytes
    max_depth: Positive = _GRAPHQL.max_depth
    max_aliases: Annotated[int, Field(ge=0)] = _GRAPHQL.max_aliases
    max_cost: Positive = _GRAPHQL.max_cost
    max_documents: Positive = _GRAPHQL.max_documents
    time_budget: Annotated[Seconds, Field(strict=False)] = _GRAPHQL.time_budget
    parse_cache_bytes: Annotated[int, Field(ge=0)] = _GRAPHQL.parse_cache_bytes


class _ClientLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    max_connections: Positive = _CLIENTS.max_connections
    max_requests: Positive = _CLIENTS.max_requests
    time_burst: Annotated[Seconds, Field(strict=False)] = _CLIENTS.time_burst
    time_rate: Annotated[Seconds, Field(strict=False)] = _CLIENTS.time_rate


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)  # C1, C2

    data_dir: str | None = None
    database_url: str | None = None
    http_host: str = LOOPBACK
    http_port: Port = DEFAULT_HTTP_PORT  # C3
    allow_schema_ids: Literal["*"] | list[str] = "*"
    bundles: list[str] = []
    replication_host: str = LOOPBACK
    replication_port: Port = DEFAULT_REPLICATION_PORT
    peers: list[str] = []
    network_key: str | None = None
    mdns: bool = False
    log_level: str = "INFO"
    allowed_origins: list[str] = []
    allowed_hosts: list[str] = []
    http_limits: _HttpLimits = _HttpLimits()
    graphql_limits: _GraphQLLimits = _GraphQLLimits()
    client_limits: _ClientLimits = _ClientLimits()

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:  # C4
        if value.upper() not in LogLevel.__args__:  # type: ignore[attr-defined]
            raise ValueError(f"must be one of {', '.join(LogLevel.__args__)}")  # type: ignore[attr-defined]
        return value.upper()

    @field_validator("peers")
    @classmethod
    def _peers(cls, value: list[str]) -> list[str]:  # C5
        for text in value:
            try:
                Peer.parse(text)
            except PeerAddressError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("network_key")
    @classmethod
    def _network_key(cls, value: str | None) -> str | None:  # C5
        if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ValueError("must be 64 hex digits")
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:  # C6
        for origin in value:
            if not _ORIGIN.fullmatch(origin.lower()):
                raise ValueError(f"{origin!r} is not an origin like http://localhost:5173")
        return [origin.lower() for origin in value]

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:  # C6
        for host in value:
            if not _HOST.fullmatch(host.lower().rstrip(".")):
                raise ValueError(f"{host!r} is not a host name")
        return [host.lower().rstrip(".") for host in value]


def _flag(key: str) -> str:
    return "--peer" if key == "peers" else "--" + key.replace("_", "-")


def _describe(error: Any, origin: dict[str, str], given: dict[str, Any]) -> str:
    location = [str(part) for part in error["loc"]]
    key = location[0] if location else "?"
    where = origin.get(key, "config")
    if where == "flag":
        name = _flag(key)
        shown = f"{name} {given.get(key)!r}"
    else:
        name = ".".join(p for p in location if not p.isdigit()) if location else key
        shown = f"{name} = {error['input']!r} (in {where})"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{shown}: {message}"


def load_settings(
    config_file: Path | None,
    data_dir: Path,
    database_url: str | None = None,
    http_port: int | None = None,
    **flags: Any,
) -> NodeSettings:
    """Settings from `config_file` (if any) overridden by flags (keyword arguments named after the keys;
    `None` means not given). Raises `SettingsError` naming every bad value."""
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            values = tomllib.loads(config_file.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError([f"cannot read config {config_file}: {exc}"]) from exc
    origin = {key: str(config_file) for key in values}
    flags = {"database_url": database_url, "http_port": http_port, **flags}
    for key, value in flags.items():
        if value is not None and value != []:
            values[key] = [*values.get(key, []), *value] if key == "peers" else value
            origin[key] = "flag"
    try:
        parsed = _Settings.model_validate(values)
    except ValidationError as exc:
        unknown = sorted(str(e["loc"][0]) for e in exc.errors() if e["type"] == "extra_forbidden")
        problems = [f"unknown keys in {config_file}: {unknown}"] if unknown else []
        problems += [_describe(e, origin, values) for e in exc.errors() if e["type"] != "extra_forbidden"]
        raise SettingsError(problems) from None
    if parsed.mdns and _loopback(parsed.replication_host):  # C7
        raise SettingsError(
            [
                f"mdns is on but replication_host {parsed.replication_host!r} is reachable from this machine only: "
                "give --replication-host 0.0.0.0 (or an address of this machine) to be found on the local network"
            ]
        )
    base = config_file.parent if config_file is not None else Path.cwd()
    limits = parsed.http_limits
    return NodeSettings(
        data_dir=Path(parsed.data_dir) if parsed.data_dir is not None else data_dir,
        database_url=parsed.database_url,
        http_host=parsed.http_host,
        http_port=parsed.http_port,
        allow_schema_ids=None if parsed.allow_schema_ids == "*" else frozenset(parsed.allow_schema_ids),
        bundles=tuple(base / b for b in parsed.bundles),
        replication_host=parsed.replication_host,
        replication_port=parsed.replication_port,
        peers=tuple(Peer.parse(p) for p in parsed.peers),
        network_key=bytes.fromhex(parsed.network_key) if parsed.network_key else DEFAULT_NETWORK_KEY,
        mdns=parsed.mdns,
        log_level=parsed.log_level,
        browsers=BrowserPolicy(frozenset(parsed.allowed_origins), frozenset(parsed.allowed_hosts)),
        http_limits=HttpLimits(**limits.model_dump()),
        graphql_limits=GraphQLLimits(**parsed.graphql_limits.model_dump()),
        client_limits=ClientLimits(**parsed.client_limits.model_dump()),
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
