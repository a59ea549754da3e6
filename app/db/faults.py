"""Which failures mean "the database is not there" or "the database is busy", and nothing else.

A client that gets either can retry the same request later and expect it to work: nothing was
written. Every transport asks `database_fault(error)` and answers with the fault's stable code
(`DATABASE_UNAVAILABLE`, `DATABASE_BUSY`), a 503 and a `Retry-After`, instead of an internal
error. Anything this module does not recognise stays an internal error: a bug must not be
disguised as an outage.

Unavailable (the database cannot be reached or used at all, until someone or something fixes it):
- a connection SQLAlchemy found dead (`DBAPIError.connection_invalidated`);
- a connection that cannot be opened: `ConnectionError` (refused, reset, aborted, broken pipe)
  and `socket.gaierror` raised while connecting (drivers let these through unwrapped);
- PostgreSQL's connection errors (SQLSTATE class 08) and its "shutting down / starting up"
  refusals (57P01, 57P02, 57P03);
- SQLite that cannot open, read or write its file: SQLITE_CANTOPEN, SQLITE_IOERR, SQLITE_PERM,
  SQLITE_READONLY, SQLITE_FULL.

Busy (the database works but is taken; a later try will get its turn):
- a write that did not get its turn within the deadline (`WriteTimeout`, app/db/transactions.py);
- SQLite's SQLITE_BUSY / SQLITE_LOCKED after its busy timeout (another process holds the lock);
- SQLAlchemy's pool timeout, and PostgreSQL's "too many connections" (53300).
"""

from __future__ import annotations

import socket
import sqlite3
from typing import ClassVar

from asyncpg import exceptions as pg  # type: ignore[import-untyped]
from sqlalchemy import exc as sa_exc

# SQLite primary result codes (sqlite3.h); the extended code's low byte is the primary one.
SQLITE_PERM, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY = 3, 5, 6, 8
SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN = 10, 13, 14
SQLITE_UNAVAILABLE = frozenset(
    {SQLITE_PERM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN}
)
SQLITE_TAKEN = frozenset({SQLITE_BUSY, SQLITE_LOCKED})

POSTGRES_UNAVAILABLE = (
    pg.PostgresConnectionError,  # SQLSTATE class 08, and a connection lost mid-statement
    pg.CannotConnectNowError,  # 57P03: starting up
    pg.AdminShutdownError,  # 57P01
    pg.CrashShutdownError,  # 57P02
)

# How long a client is told to wait before retrying (the `Retry-After` header, in seconds).
UNAVAILABLE_RETRY_AFTER_SECONDS = 5
BUSY_RETRY_AFTER_SECONDS = 1


class DatabaseFault(Exception):
    """The database could not serve the request; the same request may work later."""

    code: ClassVar[str] = "DATABASE_UNAVAILABLE"
    retry_after_seconds: ClassVar[int] = UNAVAILABLE_RETRY_AFTER_SECONDS


class DatabaseUnavailable(DatabaseFault):
    code = "DATABASE_UNAVAILABLE"
    retry_after_seconds = UNAVAILABLE_RETRY_AFTER_SECONDS

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or "the database is unavailable; nothing was done: retry in a few seconds "
            "(the server reconnects by itself when the database is back)"
        )


class DatabaseBusy(DatabaseFault):
    code = "DATABASE_BUSY"
    retry_after_seconds = BUSY_RETRY_AFTER_SECONDS

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or "the database is busy with other writes and this one did not get its turn in "
            "time (BATCHERY_DB_WRITE_TIMEOUT_SECONDS); nothing was written: retry"
        )


def database_fault(error: BaseException) -> DatabaseFault | None:
    """The fault `error` stands for, or None when it is anything else (then: an internal error).

    Looks through the whole chain: SQLAlchemy's wrapper (`.orig`), `raise ... from` and the
    exception being handled when it was raised."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        fault = _fault_of(current)
        if fault is not None:
            return fault
        orig = getattr(current, "orig", None)
        pending.extend(
            (
                orig if isinstance(orig, BaseException) else None,
                current.__cause__,
                current.__context__,
            )
        )
    return None


def _fault_of(error: BaseException) -> DatabaseFault | None:
    if isinstance(error, DatabaseFault):
        return error
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return DatabaseUnavailable()
    if isinstance(error, sa_exc.TimeoutError):  # the pool had no connection to give in time
        return DatabaseBusy("every database connection is in use; retry in a moment")
    if isinstance(error, (ConnectionError, socket.gaierror)):
        return DatabaseUnavailable()
    if isinstance(error, sqlite3.Error):
        primary = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF
        if primary in SQLITE_TAKEN:
            return DatabaseBusy()
        if primary in SQLITE_UNAVAILABLE:
            return DatabaseUnavailable()
        return None
    if isinstance(error, pg.TooManyConnectionsError):
        return DatabaseBusy("the database has no connection to spare; retry in a moment")
    if isinstance(error, POSTGRES_UNAVAILABLE):
        return DatabaseUnavailable()
    return None
