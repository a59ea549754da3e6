"""Every batched field: the right data, and one statement per level whatever the parent count."""

from __future__ import annotations

from collections import defaultdict

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import models
from tests.helpers import run

PARENT_COUNTS = [1, 5, 50]


async def fetch_all(engine: AsyncEngine, statement: object) -> list[object]:
    async with engine.connect() as conn:
        return list((await conn.execute(statement)).all())  # type: ignore[arg-type]


async def naive_newest_orders(engine: AsyncEngine, bakery_id: int, limit: int) -> list[str]:
    rows = await fetch_all(
        engine,
        select(models.CakeOrder.id)
        .where(models.CakeOrder.bakery_id == bakery_id)
        .order_by(models.CakeOrder.created_at.desc(), models.CakeOrder.id.desc())
        .limit(limit),
    )
    return [str(row.id) for row in rows]


@pytest.mark.parametrize("parents", PARENT_COUNTS)
async def test_orders_are_newest_first_and_cost_two_statements(read_engine, parents):
    outcome = await run(
        read_engine,
        "query($n: Int) { bakeries(first: $n) { id orders(limitTo: 7) { id } } }",
        {"n": parents},
    )
    assert outcome.errors == []
    assert outcome.statements == 2, outcome.sql
    assert len(outcome.data["bakeries"]) == parents
    for bakery in outcome.data["bakeries"]:
        expected = await naive_newest_orders(read_engine, int(bakery["id"]), 7)
        assert [o["id"] for o in bakery["orders"]] == expected


@pytest.mark.parametrize("parents", PARENT_COUNTS)
async def test_order_count_is_one_grouped_statement(read_engine, parents):
    outcome = await run(
        read_engine, "query($n: Int) { bakeries(first: $n) { id orderCount } }", {"n": parents}
    )
    assert outcome.statements == 2
    rows = await fetch_all(read_engine, select(models.CakeOrder.bakery_id))
    counts: dict[int, int] = defaultdict(int)
    for row in rows:
        counts[row.bakery_id] += 1
    for bakery in outcome.data["bakeries"]:
        assert bakery["orderCount"] == counts[int(bakery["id"])]


@pytest.mark.parametrize("parents", PARENT_COUNTS)
async def test_manager_is_the_one_manager_or_null(read_engine, parents):
    outcome = await run(
        read_engine,
        "query($n: Int) { bakeries(first: $n) { id manager { id firstName lastName } } }",
        {"n": parents},
    )
    assert outcome.errors == []
    assert outcome.statements == 2
    managers = await fetch_all(
        read_engine, select(models.Baker).where(models.Baker.is_manager.is_(True))
    )
    by_bakery = {row.bakery_id: str(row.id) for row in managers}
    for bakery in outcome.data["bakeries"]:
        manager = bakery["manager"]
        assert (manager and manager["id"]) == by_bakery.get(int(bakery["id"]))
    if parents == 50:  # the seed leaves every seventh bakery without a manager
        assert any(b["manager"] is None for b in outcome.data["bakeries"])


@pytest.mark.parametrize("parents", PARENT_COUNTS)
async def test_suppliers_many_to_many_both_ways(read_engine, parents):
    outcome = await run(
        read_engine,
        "query($n: Int) { bakeries(first: $n) { id suppliers { id bakeries { id } } } }",
        {"n": parents},
    )
    assert outcome.errors == []
    assert outcome.statements == 3
    links = await fetch_all(read_engine, select(models.bakery_suppliers))
    suppliers_of: dict[int, list[str]] = defaultdict(list)
    bakeries_of: dict[int, list[str]] = defaultdict(list)
    for link in sorted(links):
        suppliers_of[link.bakery_id].append(str(link.supplier_id))
        bakeries_of[link.supplier_id].append(str(link.bakery_id))
    shared = 0
    for bakery in outcome.data["bakeries"]:
        assert [s["id"] for s in bakery["suppliers"]] == suppliers_of[int(bakery["id"])]
        for supplier in bakery["suppliers"]:
            ids = [b["id"] for b in supplier["bakeries"]]
            assert ids == bakeries_of[int(supplier["id"])]
            shared += len(ids) > 1
    assert parents == 1 or shared > 0


@pytest.mark.parametrize("parents", PARENT_COUNTS)
async def test_order_bakery_is_n_to_one(read_engine, parents):
    outcome = await run(
        read_engine,
        "query($n: Int) { bakeries(first: $n) { id orders(limitTo: 3) { bakery { id name } } } }",
        {"n": parents},
    )
    assert outcome.statements == 3
    for bakery in outcome.data["bakeries"]:
        assert {o["bakery"]["id"] for o in bakery["orders"]} == {bakery["id"]}


async def test_photo_is_the_last_uploaded_or_null(engine):
    async with engine.begin() as conn:
        await conn.execute(
            models.Photo.__table__.insert(),
            [
                {
                    "order_id": 1,
                    "filename": "a.png",
                    "content_type": "image/png",
                    "size": 1,
                    "sha256": "a" * 64,
                },
                {
                    "order_id": 1,
                    "filename": "b.png",
                    "content_type": "image/png",
                    "size": 2,
                    "sha256": "b" * 64,
                },
                {
                    "order_id": 2,
                    "filename": "c.jpg",
                    "content_type": "image/jpeg",
                    "size": 3,
                    "sha256": "c" * 64,
                },
            ],
        )
    outcome = await run(
        engine,
        "{ a: cakeOrder(id: 1) { photo { filename size url } } "
        "bakeries(first: 2) { orders(limitTo: 50) { id photo { filename } } } }",
    )
    assert outcome.errors == []
    assert outcome.data["a"]["photo"]["filename"] == "b.png"
    assert outcome.data["a"]["photo"]["url"].startswith("/photos/")
    photos = {o["id"]: o["photo"] for b in outcome.data["bakeries"] for o in b["orders"]}
    assert photos["1"] == {"filename": "b.png"}
    assert photos["2"] == {"filename": "c.jpg"}
    assert all(p is None for oid, p in photos.items() if oid not in {"1", "2"})


@pytest.mark.parametrize("parents", PARENT_COUNTS)
async def test_photo_costs_one_statement_per_level(read_engine, parents):
    outcome = await run(
        read_engine,
        "query($n: Int) { bakeries(first: $n) { orders(limitTo: 4) { photo { id } } } }",
        {"n": parents},
    )
    assert outcome.errors == []
    assert outcome.statements == 3


async def test_baker_bakery(read_engine):
    outcome = await run(read_engine, '{ findBaker(lastName: "Baker") { lastName bakery { id } } }')
    rows = await fetch_all(
        read_engine,
        select(models.Baker).where(models.Baker.last_name == "Baker").order_by(models.Baker.id),
    )
    first = rows[0]
    assert outcome.data["findBaker"]["lastName"] == "Baker"
    assert outcome.data["findBaker"]["bakery"]["id"] == str(first.bakery_id)


@pytest.mark.parametrize("parents", PARENT_COUNTS)
async def test_whole_tree_costs_one_statement_per_batched_level(read_engine, parents):
    query = """query($n: Int) { bakeries(first: $n) {
        manager { id } suppliers { id bakeries { id } } orders { bakery { name } } } }"""
    outcome = await run(read_engine, query, {"n": parents})
    assert outcome.errors == []
    # bakeries, manager, suppliers, supplier.bakeries, orders, order.bakery
    assert outcome.statements == 6, outcome.sql
