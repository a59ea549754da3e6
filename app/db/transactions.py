"""Connections for transactions that read, then write what they read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


@asynccontextmanager
async def write_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection whose transactions take SQLite's write lock at BEGIN (IMMEDIATE).

    A DEFERRED transaction that reads and then writes fails with "database is locked" when another
    does the same, instead of waiting its turn; IMMEDIATE makes writers queue (busy_timeout) and
    nothing change between their checks and their writes. PostgreSQL ignores the option.
    """
    async with engine.connect() as conn:
        await conn.execution_options(sqlite_begin="IMMEDIATE")
        yield conn
