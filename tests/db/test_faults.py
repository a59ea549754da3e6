"""Which failures count as database faults: exactly the outages and the busy database, never a
bug or a refused write (those must stay visible as what they are)."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from app.db.engine import create_engine
from app.db.faults import DatabaseBusy, DatabaseUnavailable, database_fault


async def real_error(url: str, statement: str, setup: tuple[str, ...] = ()) -> BaseException:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for step in setup:
                await conn.execute(text(step))
            await conn.execute(text(statement))
    except Exception as error:
        return error
    finally:
        await engine.dispose()
    raise AssertionError(f"{statement!r} did not fail")


async def test_a_refused_write_or_a_bad_statement_is_not_a_fault(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    duplicate = await real_error(
        url,
        "INSERT INTO t VALUES (1)",
        ("CREATE TABLE t (id INTEGER PRIMARY KEY)", "INSERT INTO t VALUES (1)"),
    )
    assert isinstance(duplicate, IntegrityError)
    assert database_fault(duplicate) is None
    missing_table = await real_error(url, "SELECT * FROM nowhere")
    assert isinstance(missing_table, OperationalError)
    assert database_fault(missing_table) is None
    assert database_fault(RuntimeError("a bug")) is None
    assert database_fault(PermissionError("the photo store")) is None
    assert database_fault(TimeoutError()) is None


async def test_a_file_that_cannot_be_opened_is_unavailable(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gone' / 'x.db'}")
    (tmp_path / "gone").rmdir()
    with pytest.raises(Exception) as caught:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    await engine.dispose()
    assert isinstance(database_fault(caught.value), DatabaseUnavailable)


async def test_a_lock_held_elsewhere_past_the_busy_timeout_is_busy(tmp_path):
    path = tmp_path / "x.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (id INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    try:
        error = await real_error(
            f"sqlite+aiosqlite:///{path}", "INSERT INTO t VALUES (1)", ("PRAGMA busy_timeout=1",)
        )
    finally:
        holder.close()
    assert isinstance(database_fault(error), DatabaseBusy)


async def test_a_refused_connection_is_unavailable_even_unwrapped():
    # asyncpg lets the socket's error through as it is, not wrapped by SQLAlchemy.
    error = await real_error("postgresql+asyncpg://postgres@127.0.0.1:1/none", "SELECT 1")
    assert isinstance(error, ConnectionRefusedError)
    assert isinstance(database_fault(error), DatabaseUnavailable)
    wrapped = RuntimeError("while serving")
    wrapped.__cause__ = error
    assert isinstance(database_fault(wrapped), DatabaseUnavailable)
