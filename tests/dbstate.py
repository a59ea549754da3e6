"""Reading the database back after a test wrote to it (never trusting what the API said)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import models
from app.db.reads import bakeries, orders, products
from app.db.seed import EPOCH

TABLES = {"bakeries": bakeries, "cake_orders": orders, "products": products}


async def snapshot(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables bulk operations touch, ordered by id."""
    state = {}
    async with engine.connect() as conn:
        for name, table in TABLES.items():
            rows = await conn.execute(select(table).order_by(table.c.id))
            state[name] = [tuple(row) for row in rows]
    return state


async def count(engine: AsyncEngine, table_name: str) -> int:
    table = TABLES[table_name]
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def bakery_by_key(engine: AsyncEngine, key: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(bakeries).where(bakeries.c.external_id == key))).first()


async def bakeries_named(engine: AsyncEngine, *names: str) -> list[str]:
    async with engine.connect() as conn:
        statement = select(bakeries.c.name).where(bakeries.c.name.in_(names))
        return sorted((await conn.execute(statement)).scalars())


async def bakery(engine: AsyncEngine, pk: int) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(bakeries).where(bakeries.c.id == pk))).first()


async def order_by_key(engine: AsyncEngine, key: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(orders).where(orders.c.external_id == key))).first()


async def many_bakeries_with_orders(engine: AsyncEngine, bakeries: int, orders_each: int) -> None:
    """More bakeries than SQLite allows terms in one UNION (500), each with `orders_each` orders a
    minute apart from the seed's epoch."""
    async with engine.begin() as conn:
        await conn.execute(
            insert(models.Bakery),
            [{"name": f"b{i}", "region": models.Region.CENTRAL} for i in range(1, bakeries + 1)],
        )
        await conn.execute(
            insert(models.CakeOrder),
            [
                {
                    "bakery_id": b,
                    "written_phrase": "x",
                    "current_total": 1,
                    "created_at": EPOCH + timedelta(minutes=n),
                }
                for b in range(1, bakeries + 1)
                for n in range(orders_each)
            ],
        )
