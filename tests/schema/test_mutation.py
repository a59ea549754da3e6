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


async def test_a_refused_negative_total_says_bad_user_input(engine):
    outcome = await run(engine, ADD, {"id": "2", "n": -2_000_000_000})
    assert outcome.errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_total_past_the_int_range_is_refused_and_nothing_changes(engine):
    # currentTotal is an Int (32-bit): a total past 2147483647 could be neither stored
    # (PostgreSQL) nor read back (GraphQL) afterwards.
    before = await total_of(engine, 2)
    outcome = await run(engine, ADD, {"id": "2", "n": 2_147_483_647})
    assert outcome.data is None
    [error] = outcome.errors
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == (
        f"adding 2147483647 would make the total of order 2 larger than 2147483647 (it is {before})"
    )
    assert await total_of(engine, 2) == before
    read = await run(engine, '{ cakeOrder(id: "2") { currentTotal } }')
    assert read.errors == []
    assert read.data == {"cakeOrder": {"currentTotal": before}}


async def test_a_total_of_exactly_the_int_maximum_is_allowed(engine):
    before = await total_of(engine, 2)
    outcome = await run(engine, ADD, {"id": "2", "n": 2_147_483_647 - before})
    assert outcome.errors == []
    assert outcome.data["addMoney"]["currentTotal"] == 2_147_483_647


async def test_an_order_id_past_the_key_range_is_bad_user_input(engine):
    outcome = await run(engine, ADD, {"id": "99999999999999999999", "n": 1})
    assert outcome.data is None
    [error] = outcome.errors
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == (
        "orderId must be the id of an existing record, got '99999999999999999999'"
    )
