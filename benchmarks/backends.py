"""The databases `make bench` runs on: a fresh SQLite file, and a PostgreSQL database of its own.

Both are seeded the way `batchery seed` does (migrations, then the demo data). The PostgreSQL
database is created on the server `BENCH_POSTGRES_URL` points at (an administrative connection:
the default is the test server's `test` database) under a name of the run's own, and dropped at
the end, whatever happens in between. Nothing else on that server is touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.db.engine import create_engine
from app.db.migrate import upgrade
from app.db.seed import SeedSize, seed

BACKENDS = ["sqlite", "postgresql"]
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def reachable(url: str) -> bool:
    parts = make_url(url)
    try:
        with socket.create_connection((parts.host or "127.0.0.1", parts.port or 5432), 1):
            return True
    except OSError:
        return False


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(url: str, sql: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextlib.contextmanager
def database(backend: str, workdir: Path, postgres_url: str) -> Iterator[str]:
    """The SQLAlchemy URL of an empty database of `backend`, removed afterwards."""
    if backend == "sqlite":
        path = workdir / "data" / "batchery.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        yield f"sqlite+aiosqlite:///{path.resolve()}"
        return
    name = f"batchery_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(postgres_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        # FORCE: a server that did not stop cleanly may still hold connections. The drop waits
        # for a checkpoint: tens of seconds on a busy shared server.
        print(f"bench: dropping the PostgreSQL database {name}")
        asyncio.run(_admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def seeded(url: str, size: SeedSize) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)  # as `batchery seed` does
        await seed(engine, size)
        if engine.dialect.name == "postgresql":
            # Fresh tables have no statistics until autovacuum gets to them: plan on real ones.
            async with engine.connect() as conn:
                await conn.execute(text("ANALYZE"))
                await conn.commit()
    finally:
        await engine.dispose()
