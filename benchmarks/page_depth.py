"""What a page of `ordersConnection` costs as the client pages deeper: keyset against OFFSET.

    .venv/bin/python -m benchmarks.page_depth [--orders 100000] [--rounds 60] [--postgres URL]

One bakery with `--orders` orders in a temporary SQLite file (and a throw-away PostgreSQL schema
when reachable); for a page of 20 at the start, the middle and the end of the list, the median
time of the keyset statement `Reader` runs (`newest_orders(..., before=key)`) and of the same page
read with `OFFSET`. The keyset page is an index range whatever its depth; OFFSET reads and throws
away every row before the page.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Executable, Integer, bindparam, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.db import models, reads
from app.db.cursors import OrderKey
from app.db.engine import create_engine, create_tables
from app.db.seed import EPOCH

PAGE = 20
_OFFSET_PAGE = (
    select(reads.orders)
    .where(reads.orders.c.bakery_id == 1)
    .order_by(*reads.NEWEST_FIRST)
    .limit(PAGE + 1)
    .offset(bindparam("skip", type_=Integer))
)


async def fill(engine: AsyncEngine, orders: int) -> None:
    await create_tables(engine)
    async with engine.begin() as conn:
        await conn.execute(insert(models.Bakery).values(id=1, name="Deep", region="CENTRAL"))
        rows = [
            {
                "bakery_id": 1,
                "written_phrase": "x",
                "current_total": 1,
                "created_at": EPOCH + timedelta(seconds=n),
            }
            for n in range(orders)
        ]
        for start in range(0, orders, 5000):
            await conn.execute(insert(models.CakeOrder), rows[start : start + 5000])


Run = Callable[[AsyncConnection], Awaitable[Sequence[object]]]


async def medians_ms(engine: AsyncEngine, rounds: int, runs: list[Run]) -> list[float]:
    """The median time of each run, alternated round by round: on a shared machine, load that
    comes and goes then falls on all of them alike."""
    durations: list[list[float]] = [[] for _ in runs]
    for _ in range(rounds):
        for run, spent in zip(runs, durations, strict=True):
            async with engine.connect() as conn:
                started = time.perf_counter()
                rows = await run(conn)
                spent.append(time.perf_counter() - started)
            assert len(rows) == PAGE + 1
    return [statistics.median(spent) * 1000 for spent in durations]


async def measure(engine: AsyncEngine, dialect: str, orders: int, rounds: int) -> None:
    shape = "lateral" if dialect == "postgresql" else "union"
    for depth in (0, orders // 2, orders - 2 * PAGE):
        # The row just before the page, newest first: created_at EPOCH + (orders - depth) s.
        key = OrderKey(EPOCH + timedelta(seconds=orders - depth), orders - depth + 1)
        statement, params = reads.newest_orders_statement(shape, [1], PAGE + 1, key)

        async def keyset(
            conn: AsyncConnection, statement: Executable = statement, params: Any = params
        ) -> Sequence[object]:
            return (await conn.execute(statement, params)).all()

        async def offset(conn: AsyncConnection, depth: int = depth) -> Sequence[object]:
            return (await conn.execute(_OFFSET_PAGE, {"skip": depth})).all()

        by_key, by_offset = await medians_ms(engine, rounds, [keyset, offset])
        print(
            f"{dialect}: page at row {depth:>7}: "
            f"keyset {by_key:6.2f} ms, OFFSET {by_offset:6.2f} ms"
        )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'depth.db'}")
        await fill(engine, args.orders)
        await measure(engine, "sqlite", args.orders, args.rounds)
        await engine.dispose()

    schema = f"depth_{uuid.uuid4().hex[:8]}"
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
        await fill(engine, args.orders)
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
        await measure(engine, "postgresql", args.orders, args.rounds)
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
