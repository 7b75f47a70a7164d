from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from p2panda.node import Node, NodeConfig

from .postgres import PostgresServer


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | None]:
    try:
        server = PostgresServer()
    except (FileNotFoundError, OSError) as exc:
        if os.environ.get("P2PANDA_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"no PostgreSQL server available: {exc}")
        return
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'node.sqlite3'}"
    server = request.getfixturevalue("postgres_server")
    url: str = server.new_database()
    return url


@pytest.fixture
async def node(database_url: str, tmp_path: Path) -> AsyncIterator[Node]:
    async with Node(NodeConfig(tmp_path, database_url)) as n:
        yield n
