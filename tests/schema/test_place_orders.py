"""placeOrders: all or nothing, and stock never below zero, even under concurrent requests."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select, text

from app.db.reads import bakeries, orders, products
from app.settings import Settings
from tests import dbstate
from tests.helpers import run

PLACE = """
mutation($orders: [PlaceOrderInput!]!) {
  placeOrders(orders: $orders) { id writtenPhrase status currentTotal bakery { id } }
}
"""


async def set_stock(engine, product_id: int, stock: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE products SET stock = :s WHERE id = :id"), {"s": stock, "id": product_id}
        )


async def stock(engine, product_id: int) -> int:
    async with engine.connect() as conn:
        statement = select(products.c.stock).where(products.c.id == product_id)
        return int((await conn.execute(statement)).scalar_one())


def line(product: str, quantity: int = 1, bakery: str = "1", phrase: str = "Order") -> dict:
    return {"bakeryId": bakery, "productId": product, "quantity": quantity, "writtenPhrase": phrase}


async def test_orders_are_created_and_stock_taken_in_one_go(engine):
    await set_stock(engine, 1, 10)
    await set_stock(engine, 2, 5)
    before = await dbstate.count(engine, "cake_orders")
    outcome = await run(
        engine, PLACE, {"orders": [line("1", 3, "2", "A"), line("2", 5, "3", "B"), line("1", 2)]}
    )
    assert outcome.errors == []
    placed = outcome.data["placeOrders"]
    assert [(o["writtenPhrase"], o["bakery"]["id"], o["status"]) for o in placed] == [
        ("A", "2", "PLACED"),
        ("B", "3", "PLACED"),
        ("Order", "1", "PLACED"),
    ]
    assert (await stock(engine, 1), await stock(engine, 2)) == (5, 0)
    assert await dbstate.count(engine, "cake_orders") == before + 3
    # bakery check, product lock, one stock UPDATE, one INSERT; then the nested bakery field.
    assert [s.split()[0] for s in outcome.sql] == ["SELECT", "SELECT", "UPDATE", "INSERT", "SELECT"]


async def test_a_failing_line_leaves_stock_and_orders_as_they_were(engine):
    await set_stock(engine, 1, 10)
    await set_stock(engine, 2, 1)
    before = await dbstate.snapshot(engine)
    outcome = await run(engine, PLACE, {"orders": [line("1", 4), line("2", 1), line("2", 1)]})
    assert outcome.data is None
    (error,) = outcome.errors
    assert error["extensions"]["code"] == "INSUFFICIENT_STOCK"
    assert [(e["index"], e["code"]) for e in error["extensions"]["errors"]] == [
        (1, "INSUFFICIENT_STOCK"),
        (2, "INSUFFICIENT_STOCK"),
    ]
    assert "2 ordered, 1 in stock" in error["message"]
    assert await dbstate.snapshot(engine) == before


async def test_bad_lines_are_reported_each(engine):
    before = await dbstate.snapshot(engine)
    outcome = await run(
        engine,
        PLACE,
        {"orders": [line("99", 1), line("1", 0, bakery="77"), line("1", 1, phrase=" ")]},
    )
    details = outcome.errors[0]["extensions"]["errors"]
    assert [(e["index"], e["code"], e["field"]) for e in details] == [
        (1, "INVALID_VALUE", "quantity"),
        (2, "INVALID_VALUE", "writtenPhrase"),
    ]
    outcome = await run(engine, PLACE, {"orders": [line("99", 1), line("1", 1, bakery="77")]})
    details = outcome.errors[0]["extensions"]["errors"]
    assert [(e["index"], e["code"], e["field"]) for e in details] == [
        (0, "REFERENCE_NOT_FOUND", "productId"),
        (1, "REFERENCE_NOT_FOUND", "bakeryId"),
    ]
    assert await dbstate.snapshot(engine) == before


async def test_too_many_lines_are_refused(engine):
    outcome = await run(
        engine, PLACE, {"orders": [line("1")] * 3}, settings=Settings(max_records_per_batch=2)
    )
    assert outcome.errors[0]["extensions"]["code"] == "BATCH_TOO_LARGE"


async def test_no_lines_is_no_order(engine):
    outcome = await run(engine, PLACE, {"orders": []})
    assert outcome.data == {"placeOrders": []} and outcome.statements == 0


async def test_twenty_concurrent_orders_against_a_stock_of_ten(engine):
    await set_stock(engine, 3, 10)
    orders_before = await dbstate.count(engine, "cake_orders")
    requests = [
        run(engine, PLACE, {"orders": [line("3", 1, bakery=str(1 + i % 6), phrase=f"Race {i}")]})
        for i in range(20)
    ]
    outcomes = await asyncio.gather(*requests)

    succeeded = [o for o in outcomes if o.errors == []]
    failed = [o for o in outcomes if o.errors]
    assert len(succeeded) == 10 and len(failed) == 10
    assert all(o.errors[0]["extensions"]["code"] == "INSUFFICIENT_STOCK" for o in failed)
    # Refused by the check under the lock (which sees the stock left), not by the CHECK
    # constraint as a last resort.
    assert all("1 ordered, 0 in stock" in o.errors[0]["message"] for o in failed)
    assert await stock(engine, 3) == 0
    async with engine.connect() as conn:
        negative = await conn.execute(select(func.count()).where(products.c.stock < 0))
        assert negative.scalar_one() == 0
        race = await conn.execute(
            select(orders.c.id, orders.c.written_phrase).where(
                orders.c.written_phrase.like("Race %")
            )
        )
        placed = {row.written_phrase: str(row.id) for row in race}
        orphans = await conn.execute(
            select(func.count())
            .select_from(orders.outerjoin(bakeries, orders.c.bakery_id == bakeries.c.id))
            .where(bakeries.c.id.is_(None))
        )
        assert orphans.scalar_one() == 0
    assert await dbstate.count(engine, "cake_orders") == orders_before + 10
    # Exactly the orders the successful requests were told about, and no others.
    assert placed == {
        o.data["placeOrders"][0]["writtenPhrase"]: o.data["placeOrders"][0]["id"] for o in succeeded
    }
