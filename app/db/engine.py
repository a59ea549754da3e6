"""Engine creation: SQLite (WAL, foreign keys, real transactions) or any SQLAlchemy async URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util.concurrency import await_

from app.db.models import Base

SQLITE_BUSY_TIMEOUT_MS = 10_000
# Each SQLite connection is a thread (aiosqlite) that runs four PRAGMAs when it opens. SQLAlchemy's
# default pool keeps 5 and opens-then-closes any beyond: under 8 concurrent requests that churn
# cost a third of the throughput of a large query. Keep enough open for a busy worker.
SQLITE_POOL_SIZE = 10
SQLITE_POOL_OVERFLOW = 10
# PostgreSQL likewise: with SQLAlchemy's default pool of 5, a worker under 8 concurrent requests
# kept opening and closing connections (a TLS attempt, authentication, a new server backend):
# the two statements of `small` cost 2.0 ms of CPU instead of 1.1 (docs/performance.md).
POSTGRES_POOL_SIZE = 10
POSTGRES_POOL_OVERFLOW = 10


def create_engine(
    url: str,
    *,
    echo: bool = False,
    pre_ping: bool = True,
    connect_args: dict[str, Any] | None = None,
) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # A server can go away and come back (restart, failover, network): pre-ping hands out
        # only live connections, so the first request after a quiet outage works instead of
        # failing on a connection that died meanwhile. It costs one round trip per checkout.
        # Without it, the first failure on a dead connection still invalidates the whole pool.
        engine = create_async_engine(
            url,
            echo=echo,
            pool_pre_ping=pre_ping,
            pool_size=POSTGRES_POOL_SIZE,
            max_overflow=POSTGRES_POOL_OVERFLOW,
            connect_args=connect_args or {},
        )
        if engine.dialect.driver == "asyncpg":
            _ping_in_one_round_trip(engine)
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url, echo=echo, pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_OVERFLOW
    )
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    # pysqlite's own transaction handling never emits BEGIN before a SELECT and breaks SAVEPOINT;
    # take it over (SQLAlchemy's documented recipe) so transactions and savepoints are real.
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The wait first: switching to WAL needs the file's lock, which another process
        # (a worker migrating at start) may hold for a while.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        connection_record.info["busy_timeout_ms"] = SQLITE_BUSY_TIMEOUT_MS

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        # Writers that read before they write ask for IMMEDIATE so SQLite takes the write lock up
        # front instead of failing with "database is locked" when two upgrade at once.
        options = conn.get_execution_options()
        busy_ms = options.get("sqlite_busy_timeout_ms")
        if busy_ms is not None and conn.connection.info.get("busy_timeout_ms") != busy_ms:
            # Writers wait for another process's lock as long as their deadline says; set on the
            # driver's cursor (not counted as a statement), and only when it changes.
            cursor = conn.connection.dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
            cursor.close()
            conn.connection.info["busy_timeout_ms"] = busy_ms
        mode = options.get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _ping_in_one_round_trip(engine: AsyncEngine) -> None:
    """SQLAlchemy's asyncpg pre-ping wraps its `;` in BEGIN ... ROLLBACK (for pgbouncer's
    transaction mode, where a prepared statement may land on another server connection): three
    round trips per checkout, ~190 us of CPU, more than a small read itself. A simple-protocol
    `SELECT 1` prepares nothing, so it is one round trip that is safe there too."""
    dialect = engine.sync_engine.dialect

    def do_ping(dbapi_connection: Any) -> bool:
        try:
            await_(dbapi_connection.driver_connection.execute("SELECT 1"))
        except Exception as error:
            # Translated as SQLAlchemy's own ping does: a dead connection is then replaced.
            dbapi_connection._handle_exception(error)
        return True

    dialect.do_ping = do_ping  # type: ignore[method-assign]


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


async def create_tables(engine: AsyncEngine) -> None:
    """The models' tables, made directly (`metadata.create_all`): for tests and scratch databases,
    where it is a little faster than running the revisions. Served databases get their tables
    from the migrations (app/db/migrate.py); tests/db/test_migrations.py proves both agree."""
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


async def drop_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
