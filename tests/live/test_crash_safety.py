"""A server killed with SIGKILL in the middle of an atomic 200-record bulk write leaves nothing
half-written, on SQLite and PostgreSQL.

The kill lands at a moment the test observes, never after a sleep: the server is frozen
(SIGSTOP, confirmed by waitpid) over and over while its batch runs, and each time the test looks
whether, frozen, it is inside its write transaction:

- SQLite: the server's process holds the WAL write lock (a POSIX lock on byte 120 of
  `batchery.db-shm`, listed in /proc/locks), taken at `BEGIN IMMEDIATE`, let go after COMMIT;
- PostgreSQL: the server's backend is `idle in transaction` (waiting for the frozen client) with a
  transaction id, which PostgreSQL assigns at the transaction's first write.

A first batch is watched without a kill, to learn how many frozen moments its write lasts (N);
later batches are killed at the k-th of them, k spread over the write (the first, the middle, near
the end), so that a write split into several commits would be caught half done. Then a new server
on the same database, and every batch is counted by the marker in its names: 200 (committed before
the kill) or 0, never anything between.
"""

from __future__ import annotations

import abc
import asyncio
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import POSTGRES_UP, POSTGRES_URL
from tests.live.killable import KillableServer

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/locks")

RECORDS = 200
# Where in the write each kill lands, as a share of the frozen moments a write lasts.
KILL_AT = (0.0, 0.5, 0.9)
# Batches sent per kill before giving up: a write that ends before its k-th frozen moment is
# written whole, and the next batch tries again.
ATTEMPTS_PER_KILL = 30
# The WAL write lock: SQLite's shm locks start at byte 120, the write lock is the first.
WAL_WRITE_LOCK_BYTE = 120


def batch(marker: str) -> dict:
    return {
        "operation": "CREATE",
        "options": {"atomic": True},
        "records": [
            {"data": {"name": f"{marker} #{i}", "region": "CENTRAL"}} for i in range(RECORDS)
        ],
    }


class Backend(abc.ABC):
    """How to point a server at the database, see its write transaction, and count rows."""

    env: dict[str, str]

    @abc.abstractmethod
    async def in_write_transaction(self, pid: int) -> bool: ...

    @abc.abstractmethod
    async def count(self, marker: str) -> int: ...

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:  # most backends hold nothing to close
        return None


class SQLiteBackend(Backend):
    def __init__(self, data_dir: Path) -> None:
        self.env = {"BATCHERY_DATA_DIR": str(data_dir)}
        self.db = data_dir / "batchery.db"

    async def in_write_transaction(self, pid: int) -> bool:
        return holds_wal_write_lock(pid, self.db)

    async def count(self, marker: str) -> int:
        with sqlite3.connect(self.db) as conn:
            query = "SELECT count(*) FROM bakeries WHERE name LIKE ?"
            return int(conn.execute(query, (f"{marker} #%",)).fetchone()[0])

    async def healthy(self) -> bool:
        with sqlite3.connect(self.db) as conn:
            return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def holds_wal_write_lock(pid: int, db: Path) -> bool:
    shm = db.with_name(db.name + "-shm")
    if not shm.exists():
        return False
    inode = str(shm.stat().st_ino)
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        # "1: POSIX  ADVISORY  WRITE 1234 08:01:5678 120 120"
        if (
            fields[1:4] == ["POSIX", "ADVISORY", "WRITE"]
            and fields[4] == str(pid)
            and fields[5].rsplit(":", 1)[-1] == inode
            and fields[6] == str(WAL_WRITE_LOCK_BYTE)
        ):
            return True
    return False


class PostgresBackend(Backend):
    def __init__(self, database: str) -> None:
        base = POSTGRES_URL.rsplit("/", 1)[0]
        self.env = {"BATCHERY_DATABASE_URL": f"{base}/{database}"}
        self.dsn = f"{base.replace('postgresql+asyncpg', 'postgresql')}/{database}"
        self.watcher: Any = None

    async def in_write_transaction(self, pid: int) -> bool:
        import asyncpg

        # The batch's own transaction: the audit trail's row is written after it, in a transaction
        # of its own, and a kill there finds the batch already committed.
        if self.watcher is None:  # one connection for every look: asked while the server is frozen
            self.watcher = await asyncpg.connect(self.dsn)
        found = await self.watcher.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state = 'idle in transaction' "
            "AND backend_xid IS NOT NULL AND query NOT ILIKE '%audit_events%'"
        )
        return bool(found)

    async def close(self) -> None:
        if self.watcher is not None:
            await self.watcher.close()

    async def count(self, marker: str) -> int:
        import asyncpg

        conn = await asyncpg.connect(self.dsn)
        try:
            query = "SELECT count(*) FROM bakeries WHERE name LIKE $1"
            return int(await conn.fetchval(query, f"{marker} #%"))
        finally:
            await conn.close()


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    import asyncpg

    name = f"batchery_crash_{uuid.uuid4().hex[:10]}"
    admin_dsn = POSTGRES_URL.replace("postgresql+asyncpg", "postgresql")
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        yield name
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


async def watch(
    server: KillableServer,
    request: asyncio.Task[httpx.Response],
    in_write: Callable[[int], Awaitable[bool]],
    kill_at: int | None,
) -> int:
    """Freeze the server again and again while `request` runs, counting the frozen moments it is
    inside its write transaction; SIGKILL it, frozen, at the `kill_at`-th. Returns the count."""
    seen = 0
    while not request.done():
        await asyncio.to_thread(server.pause)
        if await in_write(server.pid):
            seen += 1
            if seen == kill_at:
                server.kill()
                return seen
        server.resume()
        await asyncio.sleep(0)  # a turn of the loop for the request's task, not a wait
    return seen


async def crash_and_count(backend: Backend) -> None:
    kept: list[str] = []  # batches answered 200 before any kill
    killed: dict[str, int] = {}  # batches whose server was killed mid-write: rows visible then
    async with httpx.AsyncClient(timeout=120) as client:

        async def send(server: KillableServer, marker: str) -> asyncio.Task[httpx.Response]:
            url = f"{server.url}/api/bakeries/bulk"
            return asyncio.ensure_future(client.post(url, json=batch(marker)))

        for share in KILL_AT:
            server = KillableServer(backend.env).start()
            try:
                # Watched, not killed: it is written whole, and says how long a write lasts.
                marker = f"kept-{uuid.uuid4().hex[:8]}"
                request = await send(server, marker)
                moments = await watch(server, request, backend.in_write_transaction, None)
                answer = await request
                assert answer.status_code == 200 and answer.json()["succeeded"] == RECORDS
                kept.append(marker)
                kill_at = max(1, int(moments * share))
                for _attempt in range(ATTEMPTS_PER_KILL):
                    marker = f"killed-{uuid.uuid4().hex[:8]}"
                    request = await send(server, marker)
                    seen = await watch(server, request, backend.in_write_transaction, kill_at)
                    if seen == kill_at:
                        killed[marker] = await backend.count(marker)
                        with pytest.raises(httpx.TransportError):
                            await request  # the connection died with the server
                        break
                    assert (await request).status_code == 200
                    kept.append(marker)  # ended before its kill_at-th moment: written whole
                    # Writes vary in length (PostgreSQL's is a few moments): aim by this one.
                    kill_at = max(1, int(seen * share))
                else:
                    pytest.fail(f"no write transaction caught in {ATTEMPTS_PER_KILL} batches")
            finally:
                server.kill()

    # A new server on the same database: it starts, and every batch is all or nothing.
    server = KillableServer(backend.env).start()
    try:
        async with httpx.AsyncClient(timeout=120) as client:
            marker = f"after-{uuid.uuid4().hex[:8]}"
            answer = await client.post(f"{server.url}/api/bakeries/bulk", json=batch(marker))
            assert answer.status_code == 200, answer.text
        counts = {m: await backend.count(m) for m in [*kept, *killed, marker]}
    finally:
        server.stop()
    assert len(killed) == len(KILL_AT)
    # Killed inside the write transaction: nothing of the batch visible to anyone else (or all of
    # it, in the instant between SQLite publishing a commit and letting go of its lock).
    assert all(visible in (0, RECORDS) for visible in killed.values()), killed
    assert 0 in killed.values(), killed
    assert {m: counts[m] for m in kept} == dict.fromkeys(kept, RECORDS)
    assert counts[marker] == RECORDS
    # Absent now (or whole, if a kill fell between SQLite writing its commit frame and publishing
    # it to readers): never part of a batch.
    assert all(counts[m] in (0, RECORDS) for m in killed), counts
    assert await backend.healthy()


async def test_sqlite_a_kill_mid_write_leaves_every_batch_whole_or_absent(tmp_path):
    await crash_and_count(SQLiteBackend(tmp_path / "data"))


@pytest.mark.skipif(not POSTGRES_UP, reason=f"PostgreSQL not reachable at {POSTGRES_URL}")
async def test_postgresql_a_kill_mid_write_leaves_every_batch_whole_or_absent():
    async with postgres_database() as database:
        backend = PostgresBackend(database)
        try:
            await crash_and_count(backend)
        finally:
            await backend.close()
