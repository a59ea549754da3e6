"""The PostgreSQL floor's reads: `app.db.reads.Reader`'s statements, run through asyncpg directly.

Each statement is compiled once by SQLAlchemy's asyncpg dialect (a statement with an `IN` list
once per list length), so PostgreSQL receives the same SQL text as from Batchery; then asyncpg
runs it with positional arguments and hands back its records, with no SQLAlchemy in between (no
result processing, no connection pool of SQLAlchemy's, no pre-ping). Whatever Batchery spends
above this on PostgreSQL is the price of GraphQL and of SQLAlchemy.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.sql import ClauseElement

from app.db import reads
from benchmarks.common import Resources

DIALECT = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]
POOL_SIZE = 10  # SQLAlchemy's default pool keeps 5 and opens up to 10 more under load


def compiled(statement: ClauseElement, **expanded: list[int]) -> tuple[str, list[str]]:
    """The SQL text the asyncpg dialect sends for `statement`, and its parameters' names in
    positional order (an expanding list `ids` of n values becomes `ids_1` ... `ids_n`)."""
    if expanded:
        statement = statement.params(**expanded)
    result = statement.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})
    return result.string, list(getattr(result, "positiontup", None) or ())


_BAKERIES = compiled(reads._BAKERIES)
_NEWEST_ORDERS = compiled(reads._NEWEST_ORDERS["lateral", False])


@functools.lru_cache(maxsize=256)
def _with_ids(name: str, count: int) -> str:
    statement = getattr(reads, name)
    return compiled(statement, ids=list(range(count)))[0]


class AsyncpgReader:
    """The four reads of the benchmark's queries, as `Reader` has them, returning asyncpg
    records (read by position or by name, never as attributes)."""

    def __init__(self, pool: asyncpg.Pool, resources: Resources) -> None:
        self.pool = pool
        self.statements = resources.statements

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        self.statements[0] += 1
        async with self.pool.acquire() as conn:
            records: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return records

    async def bakeries(self, region: None, first: int) -> list[asyncpg.Record]:
        return await self._fetch(_BAKERIES[0], first)

    async def newest_orders(self, bakery_ids: Sequence[int], limit: int) -> list[asyncpg.Record]:
        if not bakery_ids or limit <= 0:
            return []
        return await self._fetch(_NEWEST_ORDERS[0], list(bakery_ids), limit)

    async def suppliers_of_bakeries(self, bakery_ids: Sequence[int]) -> list[asyncpg.Record]:
        sql = _with_ids("_SUPPLIERS_OF_BAKERIES", len(bakery_ids))
        return await self._fetch(sql, *bakery_ids)

    async def bakeries_of_suppliers(self, supplier_ids: Sequence[int]) -> list[asyncpg.Record]:
        sql = _with_ids("_BAKERIES_OF_SUPPLIERS", len(supplier_ids))
        return await self._fetch(sql, *supplier_ids)


@asynccontextmanager
async def asyncpg_reader(resources: Resources) -> AsyncIterator[AsyncpgReader]:
    url = resources.engine.url.set(drivername="postgresql")
    pool = await asyncpg.create_pool(
        url.render_as_string(hide_password=False), min_size=POOL_SIZE, max_size=POOL_SIZE
    )
    try:
        yield AsyncpgReader(pool, resources)
    finally:
        await pool.close()
