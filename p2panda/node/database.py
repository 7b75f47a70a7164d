"""Database URLs, the two backends, and migrations.

A SQLite file in the data directory by default (never an in-memory database by default); PostgreSQL
when given a `postgresql://` URL. Schema changes are Alembic migrations, applied at start.

Store code is synchronous SQLAlchemy Core on a `Connection`; `Database` runs a whole transaction of it
off the event loop:

- SQLite: the sqlite3 driver in worker threads (one writer thread, so writes are serial). Measured on
  this workload: a statement through the async aiosqlite driver cost ~0.6 ms (a thread hop each);
  through SQLAlchemy Core on sqlite3 inside one worker-thread transaction ~0.1 ms, of which ~0.01 ms
  is sqlite3 itself; a publish runs about ten statements. See benchmarks/bench_node.py.
- PostgreSQL: asyncpg through SQLAlchemy's async engine; the same sync code runs inside `run_sync`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from p2panda.node.errors import NodeError

__all__ = ["default_database_url", "parse_url", "Database", "DatabaseError"]

DATABASE_FILE = "node.sqlite3"
T = TypeVar("T")


class DatabaseError(NodeError):
    """An unusable database URL or a failed migration."""


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / DATABASE_FILE).resolve()}"


def parse_url(url: str) -> URL:
    """The URL with the driver this node uses: sqlite -> sqlite3, postgresql -> asyncpg."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise DatabaseError(f"invalid database url {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise DatabaseError(f"the node stores into a file: {url!r} names no database file")
        return parsed.set(drivername="sqlite+pysqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise DatabaseError(f"unsupported database {backend!r} in {url!r}: use sqlite:///FILE or postgresql://")


def _sqlite_connect(dbapi_connection: Any, _record: object) -> None:
    # Transactions are begun explicitly (below), not by the driver's statement sniffing, so that a
    # transaction's reads and writes really are one transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL keeps readers off the writer's back; synchronous=NORMAL in WAL mode survives a process
    # crash (kill -9) without losing committed transactions.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


class Database:
    """Runs synchronous store functions as transactions, off the event loop."""

    def __init__(self, url: str) -> None:
        self.url = parse_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self._sync: Engine | None = None
        self._async: AsyncEngine | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        if self.is_sqlite:
            self._sync = create_sync_engine(self.url, pool_size=4, max_overflow=4)
            event.listen(self._sync, "connect", _sqlite_connect)
            event.listen(self._sync, "begin", _sqlite_begin)
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="p2panda-db-write")
            self._readers = ThreadPoolExecutor(2, thread_name_prefix="p2panda-db-read")
        else:
            self._async = create_async_engine(self.url, pool_size=5, max_overflow=5)
        await self.write(_upgrade)

    async def close(self) -> None:
        if self._writer is not None and self._readers is not None:
            self._writer.shutdown(wait=True)
            self._readers.shutdown(wait=True)
            self._writer = self._readers = None
        if self._sync is not None:
            self._sync.dispose()
            self._sync = None
        if self._async is not None:
            await self._async.dispose()
            self._async = None

    async def write(self, action: Callable[[Connection], T]) -> T:
        """Run `action` in one transaction: committed when it returns, rolled back when it raises."""
        return await self._run(action, self._writer)

    async def read(self, action: Callable[[Connection], T]) -> T:
        return await self._run(action, self._readers)

    async def _run(self, action: Callable[[Connection], T], executor: ThreadPoolExecutor | None) -> T:
        if self._sync is not None and executor is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(executor, functools.partial(self._transaction, self._sync, action))
        if self._async is None:
            raise DatabaseError("database is closed")
        async with self._async.begin() as conn:
            return await conn.run_sync(action)

    @staticmethod
    def _transaction(engine: Engine, action: Callable[[Connection], T]) -> T:
        with engine.begin() as conn:
            return action(conn)
