"""The SQL shapes behind "newest N orders per bakery" agree with each other and with Python."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from app.db import models, reads
from app.db.reads import Reader
from app.db.seed import EPOCH
from app.db.statements import count_statements
from tests.dbstate import many_bakeries_with_orders


async def expected_newest(engine, bakery_ids, limit):
    async with engine.connect() as conn:
        rows = (
            await conn.execute(select(reads.orders).where(reads.orders.c.bakery_id.in_(bakery_ids)))
        ).all()
    rows.sort(key=lambda r: (r.bakery_id, -r.created_at.timestamp(), -r.id))
    taken: dict[int, int] = {}
    result = []
    for row in rows:
        taken[row.bakery_id] = taken.get(row.bakery_id, 0) + 1
        if taken[row.bakery_id] <= limit:
            result.append(row.id)
    return result


@pytest.mark.parametrize("limit", [1, 3, 50])
async def test_newest_orders_match_a_plain_python_computation(read_engine, limit):
    reader = Reader(read_engine)
    ids = [1, 2, 5, 17, 50]
    with count_statements(read_engine) as log:
        rows = await reader.newest_orders(ids, limit)
    assert log.count == 1
    assert [row.id for row in rows] == await expected_newest(read_engine, ids, limit)


async def test_window_and_union_shapes_agree_with_ties_on_created_at(engine):
    # Two orders with the same timestamp: the id breaks the tie, newest (highest) first.
    async with engine.begin() as conn:
        await conn.execute(
            insert(models.CakeOrder),
            [
                {
                    "bakery_id": 1,
                    "written_phrase": "tie",
                    "current_total": 1,
                    "created_at": EPOCH + timedelta(days=900),
                },
                {
                    "bakery_id": 1,
                    "written_phrase": "tie",
                    "current_total": 1,
                    "created_at": EPOCH + timedelta(days=900),
                },
            ],
        )
    reader = Reader(engine)
    expected = await expected_newest(engine, [1, 2, 3], 3)
    async with engine.connect() as conn:
        union = (await conn.execute(*reads.newest_orders_statement("union", [1, 2, 3], 3))).all()
        window = (await conn.execute(*reads.newest_orders_statement("window", [1, 2, 3], 3))).all()
    assert [r.id for r in union] == expected
    assert [r.id for r in window] == expected
    assert [r.id for r in await reader.newest_orders([1, 2, 3], 3)] == expected
    assert union[0].written_phrase == "tie" and union[0].id > union[1].id


async def test_more_parents_than_sqlite_allows_in_a_union_is_still_one_statement(empty_engine):
    await many_bakeries_with_orders(empty_engine, 601, 3)
    ids = list(range(1, 602))
    with count_statements(empty_engine) as log:
        rows = await Reader(empty_engine).newest_orders(ids, 2)
    assert log.count == 1
    assert [row.id for row in rows] == await expected_newest(empty_engine, ids, 2)


async def test_zero_limit_or_no_parents_runs_nothing(read_engine):
    reader = Reader(read_engine)
    with count_statements(read_engine) as log:
        assert await reader.newest_orders([], 5) == []
        assert await reader.newest_orders([1, 2], 0) == []
    assert log.count == 0


async def test_on_postgresql_a_read_runs_outside_any_transaction(read_engine):
    # One statement is atomic on its own: in autocommit a read is one round trip, not three
    # (BEGIN, it, ROLLBACK). The plain engine, for contrast, opens a transaction.
    if read_engine.dialect.name != "postgresql":
        pytest.skip("SQLite's BEGIN comes from our own begin hook, unchanged")
    reader = Reader(read_engine)
    for engine, in_transaction in ((reader.engine, False), (read_engine, True)):
        async with engine.connect() as conn:
            assert (await conn.execute(select(models.Bakery.id).limit(1))).scalar_one() >= 1
            driver = conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
            assert driver.is_in_transaction() is in_transaction
    rows = await reader.bakeries(None, 3)
    assert [row.id for row in rows] == sorted(row.id for row in rows)
