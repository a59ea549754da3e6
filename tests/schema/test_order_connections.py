"""Bakery.ordersConnection: each bakery its own keyset page, one statement per level."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import models, reads
from app.db.cursors import decode_order, order_cursor
from tests.helpers import run

PARENT_COUNTS = [1, 5, 50]

ORDERS_PAGE = """
query($id: ID!, $first: Int, $after: String) {
  bakery(id: $id) {
    ordersConnection(first: $first, after: $after) {
      edges { cursor node { id createdAt } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""

LEVEL = """
query($n: Int, $first: Int, $after: String) {
  bakeries(first: $n) {
    id
    ordersConnection(first: $first, after: $after) {
      totalCount
      edges { cursor node { id } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""


async def newest_ids(engine: AsyncEngine, bakery_id: int) -> list[str]:
    orders = reads.orders
    statement = (
        select(orders.c.id).where(orders.c.bakery_id == bakery_id).order_by(*reads.NEWEST_FIRST)
    )
    async with engine.connect() as conn:
        return [str(row.id) for row in (await conn.execute(statement)).all()]


async def walk_orders(engine: AsyncEngine, bakery_id: int, first: int) -> tuple[list[str], int]:
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        variables: dict[str, Any] = {"id": str(bakery_id), "first": first, "after": after}
        outcome = await run(engine, ORDERS_PAGE, variables)
        assert outcome.errors == [] and outcome.statements == 2, outcome
        pages += 1
        page = outcome.data["bakery"]["ordersConnection"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return seen, pages
        after = page["pageInfo"]["endCursor"]


@pytest.mark.parametrize("bakery_id", [1, 17, 50])
async def test_paging_a_bakerys_orders_visits_each_once_newest_first(read_engine, bakery_id):
    seen, pages = await walk_orders(read_engine, bakery_id, 7)
    assert seen == await newest_ids(read_engine, bakery_id)
    assert pages == 9  # 60 orders: 8 pages of 7 and one of 4


async def test_each_edge_cursor_is_its_order_position(read_engine):
    outcome = await run(read_engine, ORDERS_PAGE, {"id": "3", "first": 3})
    page = outcome.data["bakery"]["ordersConnection"]
    for edge in page["edges"]:
        key = decode_order(edge["cursor"])
        assert str(key.id) == edge["node"]["id"]
        assert key.created_at.isoformat() == edge["node"]["createdAt"]
    assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]


@pytest.mark.parametrize("parents", PARENT_COUNTS)
async def test_every_bakery_of_a_level_gets_its_own_page_in_one_statement(read_engine, parents):
    first = await run(read_engine, LEVEL, {"n": parents, "first": 4})
    assert first.errors == []
    assert first.statements == 3, first.sql  # bakeries, their orders, their order counts
    for bakery in first.data["bakeries"]:
        expected = await newest_ids(read_engine, int(bakery["id"]))
        page = bakery["ordersConnection"]
        assert [edge["node"]["id"] for edge in page["edges"]] == expected[:4]
        assert page["totalCount"] == len(expected)
        assert page["pageInfo"]["hasNextPage"] is True
    # `after` is a position in newest-first order, the same for every bakery of the level: each
    # gets its own orders older than it.
    after = first.data["bakeries"][0]["ordersConnection"]["pageInfo"]["endCursor"]
    key = decode_order(after)
    second = await run(read_engine, LEVEL, {"n": parents, "first": 4, "after": after})
    assert second.statements == 3
    for bakery in second.data["bakeries"]:
        expected = await older_ids(read_engine, int(bakery["id"]), key.created_at, key.id)
        page = bakery["ordersConnection"]
        assert [edge["node"]["id"] for edge in page["edges"]] == expected[:4]
        assert page["pageInfo"]["hasNextPage"] is (len(expected) > 4)


async def older_ids(
    engine: AsyncEngine, bakery_id: int, created_at: Any, order_id: int
) -> list[str]:
    orders = reads.orders
    statement = (
        select(orders.c.id, orders.c.created_at)
        .where(orders.c.bakery_id == bakery_id)
        .order_by(*reads.NEWEST_FIRST)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(statement)).all()
    return [str(r.id) for r in rows if (r.created_at, r.id) < (created_at, order_id)]


async def test_without_total_count_a_level_costs_only_its_page(read_engine):
    query = "{ bakeries(first: 5) { ordersConnection(first: 2) { edges { node { id } } } } }"
    outcome = await run(read_engine, query)
    assert outcome.errors == [] and outcome.statements == 2


async def test_a_bakery_without_orders_gets_an_empty_page(engine):
    async with engine.begin() as conn:
        await conn.execute(insert(reads.bakeries).values(name="New", region="CENTRAL"))
    outcome = await run(engine, LEVEL, {"n": 10, "first": 5})
    new = outcome.data["bakeries"][-1]["ordersConnection"]
    assert new == {
        "totalCount": 0,
        "edges": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    }
    # The small seed's 5 orders per bakery fill one page of 5 exactly: no next page.
    assert all(
        len(b["ordersConnection"]["edges"]) == 5
        and not b["ordersConnection"]["pageInfo"]["hasNextPage"]
        for b in outcome.data["bakeries"][:-1]
    )


async def test_new_orders_placed_while_paging_do_not_shift_the_next_page(engine):
    before = await newest_ids(engine, 1)
    first = await run(engine, ORDERS_PAGE, {"id": "1", "first": 2})
    page = first.data["bakery"]["ordersConnection"]
    assert [edge["node"]["id"] for edge in page["edges"]] == before[:2]
    cursor = decode_order(page["pageInfo"]["endCursor"])
    # Meanwhile: a new order (the newest of all), and one at the cursor's very time with a higher
    # id (before the cursor in newest-first order, the tie broken by id). Both land on pages
    # already seen; an offset would have shifted the next page back by two.
    # (One INSERT each: an executemany takes its columns from the first row.)
    async with engine.begin() as conn:
        for phrase, created_at in [
            ("new", models.utcnow()),
            ("tie", cursor.created_at),
            ("old", cursor.created_at - timedelta(days=3650)),
        ]:
            values = {"written_phrase": phrase, "created_at": created_at}
            await conn.execute(insert(reads.orders).values(bakery_id=1, current_total=1, **values))
    variables = {"id": "1", "first": 2, "after": page["pageInfo"]["endCursor"]}
    second = await run(engine, ORDERS_PAGE, variables)
    edges = second.data["bakery"]["ordersConnection"]["edges"]
    assert [edge["node"]["id"] for edge in edges] == before[2:4]
    # The one inserted after the cursor (older than every order) is on the last page.
    rest, _ = await walk_orders(engine, 1, 2)
    assert rest[-1] == max(await newest_ids(engine, 1), key=int)


async def test_an_order_cursor_names_the_row_even_after_it_is_deleted(engine):
    ids = await newest_ids(engine, 2)
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(reads.orders).where(reads.orders.c.id == int(ids[1])))
        ).one()
    cursor = order_cursor(row.created_at, row.id)
    async with engine.begin() as conn:
        await conn.execute(reads.orders.delete().where(reads.orders.c.id == row.id))
    outcome = await run(engine, ORDERS_PAGE, {"id": "2", "first": 10, "after": cursor})
    edges = outcome.data["bakery"]["ordersConnection"]["edges"]
    assert [edge["node"]["id"] for edge in edges] == ids[2:]


async def test_orders_connection_pages_are_capped_by_the_page_size_setting(engine):
    from app.settings import Settings

    outcome = await run(
        engine, ORDERS_PAGE, {"id": "1", "first": 50}, settings=Settings(max_page_size=3)
    )
    page = outcome.data["bakery"]["ordersConnection"]
    assert len(page["edges"]) == 3 and page["pageInfo"]["hasNextPage"] is True
    assert models.INT_MAX  # the cap is the setting, not a database limit
