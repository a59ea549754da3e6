"""Datetimes come back timezone-aware and equal on both backends; SQLite keeps its usual text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select, text, update

from app.db import models
from app.db.reads import Reader, orders


async def test_datetimes_round_trip_as_aware_utc(engine):
    moment = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=timezone(timedelta(hours=2)))
    async with engine.begin() as conn:
        await conn.execute(update(orders).where(orders.c.id == 1).values(created_at=moment))
    [row] = await Reader(engine).orders_by_id([1])
    assert row.created_at == moment
    assert row.created_at.tzinfo is UTC
    assert row.created_at.hour == 3


async def test_sqlite_stores_the_same_text_as_sqlalchemy_always_did(engine):
    if engine.dialect.name != "sqlite":
        return
    moment = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    async with engine.begin() as conn:
        await conn.execute(update(orders).where(orders.c.id == 1).values(created_at=moment))
        stored = (
            await conn.execute(text("SELECT created_at FROM cake_orders WHERE id = 1"))
        ).scalar_one()
        newest = (
            await conn.execute(select(models.CakeOrder.created_at).order_by(orders.c.created_at))
        ).first()
    assert stored == "2026-03-04 05:06:07.000000"
    assert newest is not None and newest.created_at.tzinfo is UTC
