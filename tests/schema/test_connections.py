"""Relay connections: every row exactly once, in the REST order, one statement per level per page,
and pages that do not shift when rows are inserted or deleted before the cursor."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import models, reads
from app.db.cursors import bakery_cursor, order_cursor
from app.settings import Settings
from tests.helpers import Outcome, run

BAKERIES_PAGE = """
query($first: Int, $after: String, $region: Region) {
  bakeriesConnection(first: $first, after: $after, region: $region) {
    edges { cursor node { id name } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""

ORDERS_PAGE = """
query($id: ID!, $first: Int, $after: String) {
  bakery(id: $id) {
    ordersConnection(first: $first, after: $after) {
      edges { cursor node { id createdAt } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""


async def ids_of(engine: AsyncEngine, statement: Any) -> list[str]:
    async with engine.connect() as conn:
        return [str(row[0]) for row in (await conn.execute(statement)).all()]


async def walk_bakeries(
    engine: AsyncEngine, first: int, **variables: Any
) -> tuple[list[str], list[Outcome]]:
    """Every page from the first on, following endCursor while hasNextPage says so."""
    seen: list[str] = []
    outcomes: list[Outcome] = []
    after = None
    while True:
        outcome = await run(engine, BAKERIES_PAGE, {"first": first, "after": after, **variables})
        assert outcome.errors == [], outcome.errors
        outcomes.append(outcome)
        page = outcome.data["bakeriesConnection"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return seen, outcomes
        after = page["pageInfo"]["endCursor"]
        assert len(outcomes) < 100, "paging does not end"


async def test_paging_by_seven_visits_every_bakery_once_in_id_order(read_engine):
    seen, outcomes = await walk_bakeries(read_engine, 7)
    assert seen == await ids_of(read_engine, select(reads.bakeries.c.id).order_by("id"))
    assert len(seen) == 50 and len(outcomes) == 8  # 7 full pages and one of 1
    assert [o.statements for o in outcomes] == [1] * 8


@pytest.mark.parametrize("region", ["NORTH_EAST", "CENTRAL"])
async def test_paging_one_region_visits_its_bakeries_once_in_id_order(read_engine, region):
    seen, _ = await walk_bakeries(read_engine, 3, region=region)
    expected = select(reads.bakeries.c.id).where(reads.bakeries.c.region == models.Region[region])
    assert seen == await ids_of(read_engine, expected.order_by("id"))
    assert seen


async def test_page_info_at_the_end_of_the_list(engine):
    # The small seed has 6 bakeries: two pages of 3, the second one ending the list exactly.
    first = await run(engine, BAKERIES_PAGE, {"first": 3})
    info = first.data["bakeriesConnection"]["pageInfo"]
    assert info == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "startCursor": bakery_cursor(1),
        "endCursor": bakery_cursor(3),
    }
    second = await run(engine, BAKERIES_PAGE, {"first": 3, "after": info["endCursor"]})
    page = second.data["bakeriesConnection"]
    assert [edge["node"]["id"] for edge in page["edges"]] == ["4", "5", "6"]
    assert [edge["cursor"] for edge in page["edges"]] == [bakery_cursor(i) for i in (4, 5, 6)]
    assert page["pageInfo"]["hasNextPage"] is False
    assert page["pageInfo"]["endCursor"] == bakery_cursor(6)
    past = await run(engine, BAKERIES_PAGE, {"first": 3, "after": bakery_cursor(6)})
    assert past.data["bakeriesConnection"] == {
        "edges": [],
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        },
    }


async def test_first_zero_gives_no_edges_but_says_whether_rows_follow(engine):
    outcome = await run(engine, BAKERIES_PAGE, {"first": 0})
    page = outcome.data["bakeriesConnection"]
    assert page["edges"] == [] and page["pageInfo"]["hasNextPage"] is True
    assert outcome.statements == 1


async def test_first_is_capped_by_the_page_size_setting(engine):
    settings = Settings(max_page_size=4)
    outcome = await run(engine, BAKERIES_PAGE, {"first": 1000}, settings=settings)
    page = outcome.data["bakeriesConnection"]
    assert [edge["node"]["id"] for edge in page["edges"]] == ["1", "2", "3", "4"]
    assert page["pageInfo"]["hasNextPage"] is True
    unset = await run(engine, BAKERIES_PAGE, {"first": None}, settings=settings)
    assert len(unset.data["bakeriesConnection"]["edges"]) == 4


async def test_a_row_inserted_or_deleted_before_the_cursor_does_not_shift_the_next_page(engine):
    async with engine.begin() as conn:
        await conn.execute(delete(reads.bakeries).where(reads.bakeries.c.id == 2))
    first = await run(engine, BAKERIES_PAGE, {"first": 2})
    page = first.data["bakeriesConnection"]
    assert [edge["node"]["id"] for edge in page["edges"]] == ["1", "3"]
    # Meanwhile, another client inserts a bakery before the cursor (into the gap at id 2),
    # deletes the very row the cursor names, and inserts one at the end.
    async with engine.begin() as conn:
        await conn.execute(insert(reads.bakeries).values(id=2, name="Gap", region="CENTRAL"))
        await conn.execute(delete(reads.bakeries).where(reads.bakeries.c.id == 3))
        await conn.execute(insert(reads.bakeries).values(name="Late", region="CENTRAL"))
    after = page["pageInfo"]["endCursor"]
    second = await run(engine, BAKERIES_PAGE, {"first": 2, "after": after})
    # An offset (OFFSET 2) would now give 4, 5 after repeating nothing only by luck; the keyset
    # gives exactly the rows after id 3, whatever happened before it.
    assert [e["node"]["id"] for e in second.data["bakeriesConnection"]["edges"]] == ["4", "5"]
    rest, _ = await walk_bakeries(engine, 2)
    assert rest == ["1", "2", "4", "5", "6", "7"]


async def test_a_bakeries_page_is_as_large_as_asked_even_past_a_deleted_row(engine):
    async with engine.begin() as conn:
        await conn.execute(delete(reads.bakeries).where(reads.bakeries.c.id.in_([4, 5])))
    outcome = await run(engine, BAKERIES_PAGE, {"first": 2, "after": bakery_cursor(3)})
    page = outcome.data["bakeriesConnection"]
    assert [edge["node"]["id"] for edge in page["edges"]] == ["6"]
    assert page["pageInfo"]["hasNextPage"] is False


def wrap(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("after", "reason"),
    [
        ("not-a-cursor", "not a cursor"),
        ("", "not a cursor"),
        ("1", "not a cursor"),  # a REST-style id: GraphQL cursors are opaque
        (wrap("v1:bakery:0"), "not a cursor"),
        (wrap("v9:bakery:1"), "not a cursor"),
        ("ä", "URL-safe base64"),
    ],
)
async def test_an_invalid_bakery_cursor_is_bad_user_input_naming_after(engine, after, reason):
    outcome = await run(engine, BAKERIES_PAGE, {"first": 2, "after": after})
    assert outcome.data is None
    (error,) = outcome.errors
    assert error["message"].startswith("after is not a cursor of bakeriesConnection: ")
    assert reason in error["message"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "after"}
    assert error["path"] == ["bakeriesConnection"]
    assert outcome.statements == 0


async def test_an_order_cursor_is_refused_by_bakeries_and_the_other_way_round(engine):
    wrong = await run(engine, BAKERIES_PAGE, {"after": order_cursor(models.utcnow(), 1)})
    assert "a cursor of cake orders, not of bakeries" in wrong.errors[0]["message"]
    other = await run(engine, ORDERS_PAGE, {"id": "1", "after": bakery_cursor(1)})
    (error,) = other.errors
    assert error["message"].startswith("after is not a cursor of Bakery.ordersConnection: ")
    assert "a cursor of bakeries, not of cake orders" in error["message"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "after"}
    assert error["path"] == ["bakery", "ordersConnection"]


async def test_a_negative_first_is_bad_user_input(engine):
    outcome = await run(engine, BAKERIES_PAGE, {"first": -1})
    assert outcome.errors[0]["message"] == "first must be zero or more, got -1"
    assert outcome.errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_total_count_costs_one_statement_only_when_asked_for(engine):
    query = """{ all: bakeriesConnection(first: 1) { totalCount }
                 ne: bakeriesConnection(first: 1, region: NORTH_EAST) { totalCount }
                 none: bakeriesConnection(first: 0) { edges { cursor } } }"""
    outcome = await run(engine, query)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(reads.bakeries.c.region))).all()
    regions = [row.region for row in rows]
    assert outcome.data["all"]["totalCount"] == len(regions) == 6
    assert outcome.data["ne"]["totalCount"] == regions.count(models.Region.NORTH_EAST)
    # Three page statements and one count for both totals.
    assert outcome.statements == 4, outcome.sql


async def test_aliases_with_different_arguments_each_get_their_own_page(engine):
    query = """{ a: bakeriesConnection(first: 1) { edges { node { id } } pageInfo { hasNextPage } }
                 b: bakeriesConnection(first: 6) { edges { node { id } } pageInfo { hasNextPage } }
                 c: bakeriesConnection(first: 1, region: NORTH_EAST) { edges { node { region } } }
                 d: bakeriesConnection(first: 1) { pageInfo { endCursor } } }"""
    outcome = await run(engine, query)
    data = outcome.data
    assert [e["node"]["id"] for e in data["a"]["edges"]] == ["1"]
    assert data["a"]["pageInfo"]["hasNextPage"] is True
    assert len(data["b"]["edges"]) == 6 and data["b"]["pageInfo"]["hasNextPage"] is False
    assert [e["node"]["region"] for e in data["c"]["edges"]] == ["NORTH_EAST"]
    assert data["d"]["pageInfo"]["endCursor"] == bakery_cursor(1)
    assert outcome.statements == 3  # a and d ask the same question: one statement between them


async def test_a_json_batch_pages_each_operation_with_its_own_arguments(client, engine):
    # Queries of one batch share the request's loaders: each must still get its own page.
    query = "query($r: Region, $a: String) { bakeriesConnection(first: 2, region: $r, after: $a) "
    query += "{ totalCount edges { node { id region } } pageInfo { endCursor } } }"
    batch = [
        {"query": query, "variables": {}},
        {"query": query, "variables": {"r": "NORTH_EAST"}},
        {"query": query, "variables": {"a": bakery_cursor(4)}},
    ]
    response = await client.post("/graphql", json=batch)
    pages = [item["data"]["bakeriesConnection"] for item in response.json()]
    assert [[e["node"]["id"] for e in page["edges"]] for page in pages][::2] == [
        ["1", "2"],
        ["5", "6"],
    ]
    assert {e["node"]["region"] for e in pages[1]["edges"]} == {"NORTH_EAST"}
    north_east = select(reads.bakeries.c.id).where(reads.bakeries.c.region == "NORTH_EAST")
    expected = len(await ids_of(engine, north_east))
    assert [page["totalCount"] for page in pages] == [6, expected, 6]
