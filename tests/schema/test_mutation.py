"""addMoney: atomic in the database."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from tests.helpers import run

ADD = (
    "mutation($id: ID!, $n: Int!) { addMoney(orderId: $id, dollarsToAdd: $n) { id currentTotal } }"
)


async def total_of(engine, order_id: int) -> int:
    async with engine.connect() as conn:
        query = text("SELECT current_total FROM cake_orders WHERE id = :id")
        return int((await conn.execute(query, {"id": order_id})).scalar_one())


async def test_fifty_concurrent_additions_are_all_counted(engine):
    before = await total_of(engine, 3)
    outcomes = await asyncio.gather(*(run(engine, ADD, {"id": "3", "n": 1}) for _ in range(50)))
    assert all(o.errors == [] for o in outcomes)
    assert await total_of(engine, 3) == before + 50
    # Each call saw a distinct running total: no two updates read the same old value.
    seen = sorted(o.data["addMoney"]["currentTotal"] for o in outcomes)
    assert seen == list(range(before + 1, before + 51))


async def test_unknown_order_is_not_found(engine):
    outcome = await run(engine, ADD, {"id": "999999", "n": 1})
    assert outcome.data is None
    assert outcome.errors[0]["extensions"]["code"] == "NOT_FOUND"
    assert "999999" in outcome.errors[0]["message"]


async def test_a_total_below_zero_is_refused_and_nothing_changes(engine):
    before = await total_of(engine, 2)
    outcome = await run(engine, ADD, {"id": "2", "n": -(before + 1)})
    assert outcome.data is None
    assert "negative" in outcome.errors[0]["message"]
    assert await total_of(engine, 2) == before
