"""`Reader` on PostgreSQL runs its statements through asyncpg directly (app/db/pg_reads.py): the
same rows, values and types as SQLAlchemy's execute gave, every statement counted, errors as
SQLAlchemy raised them, and a cancelled read gives its connection back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from app.db import models
from app.db.cursors import OrderKey
from app.db.engine import create_engine
from app.db.faults import DatabaseUnavailable, database_fault
from app.db.models import INT_MAX, OrderStatus, Region, enum_reader
from app.db.reads import Reader
from app.db.seed import EPOCH
from app.db.statements import count_statements
from tests.conftest import POSTGRES_UP, POSTGRES_URL
from tests.faults import CuttableProxy

# The asyncpg path is PostgreSQL's: these tests run on that backend only (no SQLite variants
# generated just to be skipped).
pytestmark = [
    pytest.mark.skipif(not POSTGRES_UP, reason=f"no PostgreSQL at {POSTGRES_URL}"),
    pytest.mark.parametrize("backend", ["postgresql"], indirect=True),
]

BEFORE = OrderKey(EPOCH + timedelta(days=2), 10**6)
# Every Reader method, with arguments that return rows from the read seed (50 bakeries).
CALLS = [
    ("bakeries", (None, 7)),
    ("bakeries", (Region.CENTRAL, 50)),
    ("bakeries_after", (None, 3, 5)),
    ("bakeries_after", (Region.NORTH_EAST, 2, 50)),
    ("bakery_counts", ()),
    ("bakeries_by_id", ([3, 1, 2, 999],)),
    ("bakeries_of_suppliers", ([1, 2, 3],)),
    ("orders_by_id", ([1, 5, 77],)),
    ("newest_orders", ([1, 2, 50], 4)),
    ("newest_orders", ([1, 2, 50], 4, BEFORE)),
    ("order_counts", ([1, 2, 3, 48],)),
    ("managers", (list(range(1, 51)),)),
    ("suppliers_of_bakeries", ([1, 2, 3],)),
    ("products", ()),
    ("latest_photos", ([1, 2, 3],)),
    ("photo", (1,)),
    ("baker_by_last_name", ("nobody",)),
]


@pytest.fixture
def pg_engine(read_engine: AsyncEngine) -> AsyncEngine:
    assert read_engine.dialect.name == "postgresql"
    return read_engine


def typed(rows: object) -> object:
    """Rows as (fields, values by attribute and their exact types), comparable across paths."""
    if rows is None:
        return None
    if not isinstance(rows, list | tuple) or (rows and hasattr(rows, "_fields")):
        rows = [rows]
    return [
        (tuple(row._fields), [(v, type(v), getattr(v, "tzinfo", None)) for v in attributes(row)])
        for row in rows
    ]


def attributes(row: Any) -> list[Any]:
    return [getattr(row, name) for name in row._fields]


def by_position(row: Any) -> list[Any]:
    """What a reader by position gets: the enum columns through `enum_reader`."""
    readers = {Region: enum_reader(Region), OrderStatus: enum_reader(OrderStatus)}
    types = {"region": Region, "status": OrderStatus}
    return [
        readers[types[name]](row[i]) if name in types else row[i]
        for i, name in enumerate(row._fields)
    ]


@pytest.mark.parametrize(("method", "arguments"), CALLS, ids=[c[0] for c in CALLS])
async def test_every_read_gives_what_sqlalchemy_gave(pg_engine, method, arguments):
    reader = Reader(pg_engine)
    assert reader.asyncpg is not None
    with count_statements(pg_engine) as log:
        fast = await getattr(reader, method)(*arguments)
    assert log.count == 1, log.statements
    plain = Reader(pg_engine)
    plain.asyncpg = None  # SQLAlchemy's execute and result processing, as before
    expected = await getattr(plain, method)(*arguments)
    assert typed(fast) == typed(expected)
    if method not in ("photo", "baker_by_last_name", "latest_photos"):
        assert fast, "the seed answers every read here with rows"
    rows = fast if isinstance(fast, list) else [fast] if fast is not None else []
    plain_rows = expected if isinstance(expected, list) else [expected] if expected else []
    assert [by_position(row) for row in rows] == [by_position(row) for row in plain_rows]


async def test_photos_and_a_found_baker_give_what_sqlalchemy_gave(engine):
    # The read seed has no photos: a writable database gets some (two for order 1: the latest
    # wins), with a timestamp that is not UTC on the way in.
    assert engine.dialect.name == "postgresql"
    moment = datetime(2026, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=-5)))
    async with engine.begin() as conn:
        await conn.execute(
            insert(models.Photo),
            [
                {
                    "order_id": order_id,
                    "filename": f"{n}.png",
                    "content_type": "image/png",
                    "size": n,
                    "sha256": f"{n:064x}",
                    "created_at": moment + timedelta(minutes=n),
                }
                for n, order_id in enumerate([1, 1, 2], start=1)
            ],
        )
        last_name = (await conn.execute(select(models.Baker.last_name).limit(1))).scalar_one()
    plain = Reader(engine)
    plain.asyncpg = None
    for method, arguments in (
        ("latest_photos", ([1, 2, 3],)),
        ("photo", (1,)),
        ("baker_by_last_name", (last_name,)),
    ):
        fast = await getattr(Reader(engine), method)(*arguments)
        assert fast, method
        assert typed(fast) == typed(await getattr(plain, method)(*arguments))
    (photo,) = [row for row in await Reader(engine).latest_photos([2]) if row.order_id == 2]
    assert photo.created_at.tzinfo is UTC and photo.created_at == moment + timedelta(minutes=3)


async def test_a_list_of_any_length_is_one_statement_text(pg_engine):
    with count_statements(pg_engine) as log:
        for ids in ([1], [1, 2], list(range(1, 51))):
            await Reader(pg_engine).bakeries_by_id(ids)
    assert len(set(log.statements)) == 1 and "ANY" in log.statements[0]


async def test_a_read_leaves_no_transaction_and_its_connection_in_the_pool(pg_engine):
    reader = Reader(pg_engine)
    pool = pg_engine.sync_engine.pool
    await reader.newest_orders([1, 2], 3)
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    raw = await pg_engine.raw_connection()
    try:
        assert raw.driver_connection.is_in_transaction() is False  # type: ignore[union-attr]
    finally:
        raw.close()


async def test_the_pre_ping_is_one_round_trip_outside_any_transaction(pg_engine):
    engine = create_engine(pg_engine.url.render_as_string(False))
    try:
        raw = await engine.raw_connection()  # checked out, and pinged
        try:
            pid = raw.driver_connection.get_server_pid()  # type: ignore[union-attr]
            assert await greenlet_spawn(engine.dialect.do_ping, raw.dbapi_connection)
            async with pg_engine.connect() as other:
                last = await other.execute(
                    text("SELECT query, state FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                )
                # SQLAlchemy's own ping would have left "ROLLBACK" (after BEGIN and `;`).
                assert tuple(last.one()) == ("SELECT 1", "idle")
        finally:
            raw.close()
    finally:
        await engine.dispose()


async def test_a_refused_statement_raises_what_sqlalchemy_raised(pg_engine):
    # An id past int4: PostgreSQL refuses the parameter. Same exception class, same fault (none).
    fast = Reader(pg_engine)
    plain = Reader(pg_engine)
    plain.asyncpg = None
    errors = []
    for reader in (fast, plain):
        with pytest.raises(sa_exc.DBAPIError) as caught:
            await reader.orders_by_id([INT_MAX + 1])
        errors.append(caught.value)
    assert type(errors[0]) is type(errors[1])
    assert type(errors[0].orig) is type(errors[1].orig)
    assert not errors[0].connection_invalidated
    assert database_fault(errors[0]) is None
    assert pg_engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert len(await fast.bakeries(None, 2)) == 2  # the connection went back usable


async def test_a_cut_connection_is_unavailable_and_the_pool_heals(pg_engine):
    async with pg_engine.connect() as conn:
        search_path = (await conn.execute(text("SHOW search_path"))).scalar_one()
    proxy = await CuttableProxy.start(pg_engine.url.host or "127.0.0.1", pg_engine.url.port or 5432)
    engine = create_engine(
        pg_engine.url.set(host="127.0.0.1", port=proxy.port).render_as_string(False),
        connect_args={"server_settings": {"search_path": search_path}},
    )
    try:
        reader = Reader(engine)
        assert len(await reader.bakeries(None, 3)) == 3
        # Cut while a read waits for its answer: it fails as the database being gone.
        async with bakeries_locked(pg_engine):
            read = asyncio.ensure_future(reader.bakeries(None, 3))
            await wait_until(pg_engine, blocked=True)
            await proxy.cut()
            with pytest.raises(Exception) as caught:
                await read
        assert isinstance(database_fault(caught.value), DatabaseUnavailable), caught.value
        assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        await proxy.restore()
        assert len(await reader.bakeries(None, 3)) == 3
        # A quiet outage: the pooled connection died unseen; the pre-ping replaces it.
        await proxy.cut()
        await proxy.restore()
        assert len(await reader.bakeries(None, 3)) == 3
    finally:
        await proxy.close()
        await engine.dispose()


async def wait_until(engine: AsyncEngine, *, blocked: bool) -> None:
    """Until some backend waits for a lock (`blocked`), or none does: a condition polled, not a
    guess of a duration."""
    for _ in range(1000):
        async with engine.connect() as conn:
            waiting = (
                await conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                )
            ).scalar_one()
        if bool(waiting) == blocked:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("a read never waited for the lock" if blocked else "a read still waits")


@asynccontextmanager
async def bakeries_locked(engine: AsyncEngine) -> AsyncIterator[None]:
    """`bakeries` locked by a transaction of the test's own, so a read of it waits in PostgreSQL
    (one of the pool's connections stays checked out meanwhile)."""
    lock = await engine.connect()
    await lock.execute(text("BEGIN"))
    await lock.execute(text("LOCK TABLE bakeries IN ACCESS EXCLUSIVE MODE"))
    try:
        yield
    finally:
        await lock.rollback()
        await lock.close()


async def test_a_cancelled_read_gives_its_connection_back(pg_engine):
    reader = Reader(pg_engine)
    pool = pg_engine.sync_engine.pool
    async with bakeries_locked(pg_engine):
        read = asyncio.ensure_future(reader.bakeries(None, 3))
        await wait_until(pg_engine, blocked=True)
        read.cancel()
        with pytest.raises(asyncio.CancelledError):
            await read
        # The statement is stopped in PostgreSQL too, while the lock is still held: a connection
        # terminated before asyncpg's CancelRequest went out would leave it waiting there.
        await wait_until(pg_engine, blocked=False)
        for _ in range(1000):  # the connection is discarded once its cancel is done
            if pool.checkedout() == 1:  # type: ignore[attr-defined]  # only the lock's
                break
            await asyncio.sleep(0.01)
        assert pool.checkedout() == 1  # type: ignore[attr-defined]
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    # Every pooled connection is usable: the cancelled one was discarded, not pooled mid-query.
    results = await asyncio.gather(*(reader.bakeries(None, 2) for _ in range(12)))
    assert all(len(rows) == 2 for rows in results)


async def test_records_are_not_copied_and_hold_stored_enum_names_by_position(pg_engine):
    (order,) = await Reader(pg_engine).orders_by_id([1])
    position = order._fields.index("status")
    assert isinstance(order[position], str) and not isinstance(order[position], OrderStatus)
    assert order.status is OrderStatus[order[position]]
    assert enum_reader(OrderStatus)(order[position]) is order.status
    assert enum_reader(OrderStatus)(order.status) is order.status  # SQLite's rows hold members
