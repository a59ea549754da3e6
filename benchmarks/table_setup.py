"""What a fresh database's tables cost: `metadata.create_all` (the test fixtures) against the
Alembic revisions (every served database), per dialect. The figure behind the fixtures' choice.

    .venv/bin/python -m benchmarks.table_setup [--postgres URL] [--rounds 10]

Median of the rounds, each on a new SQLite file and a new PostgreSQL schema (when reachable).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.db.engine import create_engine, create_tables
from app.db.migrate import upgrade

WAYS: dict[str, Callable[[AsyncEngine], Awaitable[object]]] = {
    "create_all": create_tables,
    "revisions": upgrade,
}


async def timed(engine: AsyncEngine, way: Callable[[AsyncEngine], Awaitable[object]]) -> float:
    async with engine.connect() as conn:  # the connection is not what is measured
        await conn.execute(text("SELECT 1"))
    started = time.perf_counter()
    await way(engine)
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return elapsed


async def sqlite(rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in WAYS}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            for name, way in WAYS.items():
                engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / f'{name}-{i}.db'}")
                times[name].append(await timed(engine, way))
    return {name: statistics.median(values) * 1000 for name, values in times.items()}


async def postgresql(url: str, rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in WAYS}
    admin = create_engine(url)
    try:
        for _ in range(rounds):
            for name, way in WAYS.items():
                schema = f"setup_{uuid.uuid4().hex[:8]}"
                async with admin.begin() as conn:
                    await conn.execute(text(f"CREATE SCHEMA {schema}"))
                engine = create_async_engine(
                    url, connect_args={"server_settings": {"search_path": schema}}
                )
                try:
                    times[name].append(await timed(engine, way))
                finally:
                    async with admin.begin() as conn:
                        await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    finally:
        await admin.dispose()
    return {name: statistics.median(values) * 1000 for name, values in times.items()}


def report(dialect: str, medians: dict[str, float]) -> None:
    print(f"{dialect}: " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in medians.items()))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    report("sqlite", await sqlite(args.rounds))
    try:
        report("postgresql", await postgresql(args.postgres, args.rounds))
    except OSError as error:
        print(f"postgresql: skipped ({error})")


if __name__ == "__main__":
    asyncio.run(main())
