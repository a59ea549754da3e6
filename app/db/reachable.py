"""Is the configured database there? Asked once before a command starts, so that a wrong port, a
missing database or an unreadable file is one line naming the URL and the cause, not a traceback
from the first request (or from deep inside uvicorn's start-up)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import create_engine

# An address that drops packets would otherwise keep a command waiting for the driver's own
# timeout (a minute for asyncpg).
CONNECT_TIMEOUT_SECONDS = 10.0


class DatabaseUnreachable(Exception):
    """The database cannot be used; the message is the one line to print."""


def describe(error: BaseException) -> str:
    """The cause in the driver's words, first line only, without SQLAlchemy's decoration."""
    cause: BaseException = error
    if isinstance(error, DBAPIError) and error.orig is not None:
        cause = error.orig
    if isinstance(cause, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT_SECONDS:g} s"
    words = str(cause).strip().splitlines()
    detail = words[0] if words else type(cause).__name__
    if isinstance(cause, ConnectionRefusedError):
        return f"connection refused ({detail})"
    return detail


async def check_reachable(shown_url: str, engine: AsyncEngine) -> None:
    """One `SELECT 1` on `engine`; `shown_url` (password hidden) goes into the message."""
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except (OSError, DBAPIError, TimeoutError) as error:
        raise DatabaseUnreachable(
            f"cannot use the database {shown_url}: {describe(error)}"
        ) from None


async def open_checked(url: str, shown_url: str) -> AsyncEngine:
    """An engine on `url` that has answered once; disposed again if it did not."""
    try:
        engine = create_engine(url)
    except OSError as error:  # the SQLite file's directory cannot be made
        raise DatabaseUnreachable(
            f"cannot use the database {shown_url}: {describe(error)}"
        ) from None
    try:
        await check_reachable(shown_url, engine)
    except DatabaseUnreachable:
        await engine.dispose()
        raise
    return engine
