"""Keyset reads: each SQL shape gives every parent its own page after the same key."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import models, reads
from app.db.cursors import OrderKey
from app.db.reads import Reader
from app.db.seed import EPOCH
from app.db.statements import count_statements
from tests.dbstate import many_bakeries_with_orders

TIE = EPOCH + timedelta(days=900)


async def expected_page(
    engine: AsyncEngine, bakery_ids: list[int], limit: int, before: OrderKey
) -> list[int]:
    """The page the slow way: one query per bakery."""
    orders = reads.orders
    found: list[int] = []
    async with engine.connect() as conn:
        for bakery_id in bakery_ids:
            statement = (
                select(orders.c.id)
                .where(
                    orders.c.bakery_id == bakery_id,
                    tuple_(orders.c.created_at, orders.c.id) < tuple_(before.created_at, before.id),
                )
                .order_by(*reads.NEWEST_FIRST)
                .limit(limit)
            )
            found += [row.id for row in (await conn.execute(statement)).all()]
    return found


async def insert_ties(engine: AsyncEngine, bakery_ids: list[int], count: int) -> list[int]:
    async with engine.begin() as conn:
        rows = [
            {"bakery_id": b, "written_phrase": "tie", "current_total": 1, "created_at": TIE}
            for b in bakery_ids
            for _ in range(count)
        ]
        await conn.execute(insert(models.CakeOrder), rows)
        found = await conn.execute(
            select(models.CakeOrder.id).where(models.CakeOrder.created_at == TIE).order_by("id")
        )
        return [row.id for row in found.all()]


@pytest.mark.parametrize("shape", ["union", "window", "lateral"])
async def test_every_shape_pages_each_bakery_after_the_key_with_ties_broken_by_id(engine, shape):
    if shape == "lateral" and engine.dialect.name != "postgresql":
        pytest.skip("LATERAL over unnest() is PostgreSQL's")
    tied = await insert_ties(engine, [1, 2, 3], 3)
    # In the middle of bakery 2's ties (ids: bakery 1's three, then 2's, then 3's): the key is a
    # position in (createdAt, id) order, so every bakery gets its ties with a lower id, then older.
    before = OrderKey(TIE, tied[4])
    expected = await expected_page(engine, [1, 2, 3], 3, before)
    async with engine.connect() as conn:
        statement, params = reads.newest_orders_statement(shape, [1, 2, 3], 3, before)
        rows = (await conn.execute(statement, params)).all()
    assert [row.id for row in rows] == expected
    assert [row.id for row in rows if row.created_at == TIE] == [tied[2], tied[1], tied[0], tied[3]]
    assert [sum(1 for row in rows if row.bakery_id == b) for b in (1, 2, 3)] == [3, 3, 3]


async def test_the_reader_pages_past_sqlites_union_limit_in_one_statement(empty_engine):
    await many_bakeries_with_orders(empty_engine, 601, 4)
    ids = list(range(1, 602))
    before = OrderKey(EPOCH + timedelta(minutes=3), 1)
    with count_statements(empty_engine) as log:
        rows = await Reader(empty_engine).newest_orders(ids, 2, before)
    assert log.count == 1
    assert [row.id for row in rows] == await expected_page(empty_engine, ids, 2, before)
