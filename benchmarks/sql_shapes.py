"""Which SQL shape answers "the N newest orders of each of these bakeries" fastest, per dialect.

    .venv/bin/python -m benchmarks.sql_shapes [--postgres URL] [--rounds 30]

Seeds 50 bakeries x 200 orders into a temporary SQLite file (and a throw-away PostgreSQL schema when
reachable), then times each shape for 50 bakeries x 50 orders, the median of the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.db import reads
from app.db.engine import create_engine, create_tables
from app.db.seed import SeedSize, seed

SHAPES = {"union_all": "union", "window": "window", "lateral": "lateral"}


async def time_shapes(engine: AsyncEngine, rounds: int, shapes: list[str]) -> dict[str, float]:
    ids, limit = list(range(1, 51)), 50
    medians = {}
    for name in shapes:
        durations = []
        for _ in range(rounds):
            async with engine.connect() as conn:
                started = time.perf_counter()
                statement = reads.newest_orders_statement(SHAPES[name], ids, limit)
                rows = (await conn.execute(*statement)).all()
                durations.append(time.perf_counter() - started)
            assert len(rows) == 50 * 50, (name, len(rows))
        medians[name] = statistics.median(durations) * 1000
    return medians


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    size = SeedSize(bakeries=50, orders_per_bakery=200)

    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'shapes.db'}")
        await create_tables(engine)
        await seed(engine, size)
        report("sqlite", await time_shapes(engine, args.rounds, ["union_all", "window"]))
        await engine.dispose()

    schema = f"shapes_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.postgres)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
    except OSError as error:
        print(f"postgresql: skipped ({error})")
        return
    engine = create_async_engine(
        args.postgres, connect_args={"server_settings": {"search_path": schema}}
    )
    try:
        await create_tables(engine)
        await seed(engine, size)
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
        report(
            "postgresql", await time_shapes(engine, args.rounds, ["lateral", "window", "union_all"])
        )
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        await admin.dispose()


def report(dialect: str, medians: dict[str, float]) -> None:
    best = min(medians.values())
    cells = ", ".join(f"{name} {ms:.2f} ms ({ms / best:.2f}x)" for name, ms in medians.items())
    print(f"{dialect}: {cells}")


if __name__ == "__main__":
    asyncio.run(main())
