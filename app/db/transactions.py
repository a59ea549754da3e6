"""Write transactions: on SQLite they take their turn in one in-process queue, within a deadline.

SQLite has one writer at a time per file. Left to themselves, concurrent writers race for the
file lock, each sleeping and retrying in SQLite's busy handler, which is not fair: under
saturation an unlucky writer can lose every round until its busy timeout runs out and answer
"database is locked". So every write transaction of this process first waits its turn on an
`asyncio.Lock` (FIFO: the first to ask is the first served) and only then asks SQLite for the
lock, which it then gets at once unless another *process* holds it. A write that does not get
its turn within the deadline fails with `DatabaseBusy` (nothing written), which clients see as
`DATABASE_BUSY` / 503 with `Retry-After`.

PostgreSQL locks rows, not the database: there the queue is skipped and writers run in parallel.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.faults import DatabaseBusy

DEFAULT_WRITE_TIMEOUT_SECONDS = 10.0


@dataclass(slots=True)
class WriteQueue:
    """One SQLite database's writers in this process, served in the order they asked."""

    timeout_seconds: float = DEFAULT_WRITE_TIMEOUT_SECONDS
    # Writers waiting for their turn now (what a test or a gauge can watch).
    waiting: int = 0
    # An asyncio.Lock belongs to one event loop; a process may run several in turn (tests).
    _lock: asyncio.Lock | None = field(default=None, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)

    def lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop = asyncio.Lock(), loop
        return self._lock

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        lock = self.lock()
        self.waiting += 1
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await lock.acquire()
        except TimeoutError:
            raise DatabaseBusy() from None
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            lock.release()


_queues: weakref.WeakKeyDictionary[Engine, WriteQueue] = weakref.WeakKeyDictionary()


def write_queue(engine: AsyncEngine) -> WriteQueue | None:
    """The engine's queue of writers, None where the database needs none (not SQLite)."""
    if engine.dialect.name != "sqlite":
        return None
    queue = _queues.get(engine.sync_engine)
    if queue is None:
        queue = _queues[engine.sync_engine] = WriteQueue()
    return queue


def set_write_timeout(engine: AsyncEngine, seconds: float) -> None:
    """How long a write may wait for its turn (and, on SQLite, for another process's lock)."""
    queue = write_queue(engine)
    if queue is not None:
        queue.timeout_seconds = seconds


@asynccontextmanager
async def write_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for one write transaction (`async with write_connection(e) as c, c.begin()`).

    On SQLite the caller holds the process's write turn while the connection is open, and the
    transaction takes the file's write lock at BEGIN (IMMEDIATE): a DEFERRED transaction that
    reads and then writes fails with "database is locked" when another does the same, instead of
    waiting. SQLite's busy timeout (how long BEGIN waits for a lock held by another process) is
    the same deadline. PostgreSQL ignores both.
    """
    queue = write_queue(engine)
    if queue is None:
        async with engine.connect() as conn:
            yield conn
        return
    async with queue.turn(), engine.connect() as conn:
        await conn.execution_options(
            sqlite_begin="IMMEDIATE", sqlite_busy_timeout_ms=round(queue.timeout_seconds * 1000)
        )
        yield conn
