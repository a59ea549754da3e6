"""Counting the SQL statements an engine runs: the proof that batching works.

The same hook feeds `batchery_db_statements_total` and the tests' statement assertions. Transaction
control (BEGIN, SAVEPOINT, RELEASE, ...) is left out: dialects emit it differently (SQLite through
the cursor, asyncpg through its own API), and the counts must mean the same on both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

# An execution option: statements run with it set are not counted (health probes).
UNCOUNTED = "batchery_uncounted"
_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "END")

StatementListener = Callable[[str], None]

# Set by `uncounted()`: the statements of a task doing background work (the bulk jobs' reaper,
# the jobs run in an API process) are no request's, so neither the metric nor a test's count
# around a request sees them. (SQLAlchemy carries the task's context into its greenlets.)
_background: ContextVar[bool] = ContextVar("batchery_uncounted", default=False)


@contextmanager
def uncounted() -> Iterator[None]:
    """Statements run inside (and in tasks started inside) are not counted."""
    token = _background.set(True)
    try:
        yield
    finally:
        _background.reset(token)


def is_transaction_control(statement: str) -> bool:
    return statement.lstrip()[:10].upper().startswith(_TRANSACTION_CONTROL)


def listen_statements(engine: AsyncEngine, listener: StatementListener) -> Callable[[], None]:
    """Call `listener(sql)` for each statement `engine` runs; returns the function that stops it."""

    def before_cursor_execute(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if is_transaction_control(statement):
            return
        if context is not None and context.execution_options.get(UNCOUNTED):
            return
        if _background.get():
            return
        listener(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before_cursor_execute)
    return lambda: event.remove(engine.sync_engine, "before_cursor_execute", before_cursor_execute)


class StatementLog:
    """The statements run while a `count_statements` block was open."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)

    def __repr__(self) -> str:
        return f"<StatementLog {self.count} statements: {self.statements!r}>"


@contextmanager
def count_statements(engine: AsyncEngine) -> Iterator[StatementLog]:
    log = StatementLog()
    stop = listen_statements(engine, log.statements.append)
    try:
        yield log
    finally:
        stop()
