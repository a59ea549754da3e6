"""Deterministic demo data: the same seed gives the same bakeries, orders and people."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import models

FIRST_NAMES = ["Ada", "Bea", "Cal", "Dev", "Eli", "Fay", "Gus", "Hal", "Ivy", "Jo", "Kit", "Lou"]
LAST_NAMES = [
    "Baker",
    "Miller",
    "Crumb",
    "Dough",
    "Flour",
    "Honey",
    "Knead",
    "Loaf",
    "Rye",
    "Yeast",
]
PHRASES = [
    "Happy birthday!",
    "Congratulations",
    "Well done, team",
    "Welcome home",
    "Get well soon",
    "Happy anniversary",
    "Thank you",
    "Bon voyage",
]
SUPPLIER_NAMES = [
    "Mill & Co",
    "Sugar Bros",
    "Dairy Fresh",
    "Egg Farm",
    "Cocoa House",
    "Vanilla Ltd",
    "Berry Fields",
    "Nut Works",
    "Salt Cellar",
    "Butter Barn",
    "Yeast Lab",
    "Spice Route",
]
PRODUCTS = [("Sponge base", 500), ("Chocolate ganache", 300), ("Fondant", 200), ("Candles", 1000)]
# The seed's clock, so the data (and its "newest first" order) are the same on every run.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SeedSize:
    bakeries: int = 50
    orders_per_bakery: int = 200
    suppliers: int = len(SUPPLIER_NAMES)
    seed: int = 42


async def is_empty(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(models.Bakery))).scalar_one()
    return count == 0


async def reset(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for table in reversed(models.Base.metadata.sorted_tables):
            await conn.execute(delete(table))


async def seed(engine: AsyncEngine, size: SeedSize = SeedSize()) -> dict[str, int]:
    """Insert demo data into empty tables (made by `app.db.migrate.upgrade`, or by
    `create_tables` in tests); returns how many rows of each kind it wrote."""
    rows = build_rows(size)
    async with engine.begin() as conn:
        for table_name, table_rows in rows.items():
            table = models.Base.metadata.tables[table_name]
            for start in range(0, len(table_rows), 2000):
                await conn.execute(insert(table), table_rows[start : start + 2000])
        if conn.dialect.name == "postgresql":
            # The rows carry explicit ids; move each sequence past them or the next INSERT collides.
            for table_name in rows:
                if "id" in models.Base.metadata.tables[table_name].c:
                    await conn.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table_name}', 'id'), "
                            f"COALESCE((SELECT max(id) FROM {table_name}), 0) + 1, false)"
                        )
                    )
    return {name: len(table_rows) for name, table_rows in rows.items()}


def build_rows(size: SeedSize) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(size.seed)
    regions = list(models.Region)
    statuses = list(models.OrderStatus)
    bakeries: list[dict[str, Any]] = [
        {
            "id": i,
            "external_id": f"BKR-{i:04d}",
            "name": f"{rng.choice(LAST_NAMES)}'s Bakery #{i}",
            "region": regions[(i - 1) % len(regions)],
        }
        for i in range(1, size.bakeries + 1)
    ]
    bakers: list[dict[str, Any]] = []
    for bakery in bakeries:
        # Every seventh bakery has no manager, so `manager: null` shows in the demo data.
        staff = 2 if bakery["id"] % 7 else 1
        for position in range(staff):
            bakers.append(
                {
                    "id": len(bakers) + 1,
                    "first_name": rng.choice(FIRST_NAMES),
                    "last_name": rng.choice(LAST_NAMES),
                    "bakery_id": bakery["id"],
                    "is_manager": position == 0 and bakery["id"] % 7 != 0,
                }
            )
    suppliers = [
        {
            "id": i,
            "name": SUPPLIER_NAMES[(i - 1) % len(SUPPLIER_NAMES)] + ("" if i <= 12 else f" {i}"),
        }
        for i in range(1, size.suppliers + 1)
    ]
    links = [
        {"bakery_id": bakery["id"], "supplier_id": supplier_id}
        for bakery in bakeries
        for supplier_id in sorted(rng.sample(range(1, size.suppliers + 1), min(3, size.suppliers)))
    ]
    orders: list[dict[str, Any]] = []
    for bakery in bakeries:
        for n in range(size.orders_per_bakery):
            order_id = len(orders) + 1
            orders.append(
                {
                    "id": order_id,
                    "external_id": f"ORD-{order_id:06d}",
                    "bakery_id": bakery["id"],
                    "written_phrase": rng.choice(PHRASES),
                    "current_total": rng.randrange(10, 200),
                    "status": rng.choice(statuses),
                    "created_at": EPOCH + timedelta(minutes=n * 97 + bakery["id"]),
                }
            )
    products = [
        {"id": i, "name": name, "stock": stock} for i, (name, stock) in enumerate(PRODUCTS, 1)
    ]
    return {
        "bakeries": bakeries,
        "bakers": bakers,
        "suppliers": suppliers,
        "bakery_suppliers": links,
        "cake_orders": orders,
        "products": products,
    }
