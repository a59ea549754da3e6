"""Root query fields and the seed documents' example queries."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select, text

from app.db import models
from app.db.statements import count_statements
from app.settings import Settings
from schema.context import Context
from tests.helpers import run


async def test_seed_query_south_west_newest_fifty_in_two_statements(read_engine):
    outcome = await run(
        read_engine,
        "{ bakeries(region: SOUTH_WEST) { id name orders(limitTo: 50) { id writtenPhrase } } }",
    )
    assert outcome.errors == []
    assert outcome.statements == 2
    async with read_engine.connect() as conn:
        south_west = (
            (
                await conn.execute(
                    select(models.Bakery.id)
                    .where(models.Bakery.region == models.Region.SOUTH_WEST)
                    .order_by(models.Bakery.id)
                )
            )
            .scalars()
            .all()
        )
        per_bakery = dict(
            (
                await conn.execute(
                    select(models.CakeOrder.bakery_id, func.count()).group_by(
                        models.CakeOrder.bakery_id
                    )
                )
            ).all()
        )
    bakeries = outcome.data["bakeries"]
    assert [int(b["id"]) for b in bakeries] == list(south_west)
    for bakery in bakeries:
        assert per_bakery[int(bakery["id"])] > 50  # so the limit really cuts
        assert len(bakery["orders"]) == 50
        ids = [int(order["id"]) for order in bakery["orders"]]
        assert len(set(ids)) == 50


async def test_two_aliases_with_different_limits_both_get_their_counts(read_engine):
    outcome = await run(
        read_engine,
        "{ bakeries(first: 5) { few: orders(limitTo: 2) { id } "
        "many: orders(limitTo: 40) { id } } }",
    )
    assert outcome.errors == []
    assert outcome.statements == 3  # bakeries + one statement per distinct limit
    for bakery in outcome.data["bakeries"]:
        assert len(bakery["few"]) == 2
        assert len(bakery["many"]) == 40
        assert bakery["many"][:2] == bakery["few"]


async def test_bakeries_are_ordered_by_id_and_first_limits(read_engine):
    outcome = await run(read_engine, "{ bakeries(first: 7) { id } }")
    assert [b["id"] for b in outcome.data["bakeries"]] == [str(i) for i in range(1, 8)]


async def test_first_and_limit_to_are_capped_by_the_max_page_size(read_engine):
    outcome = await run(
        read_engine,
        "{ bakeries(first: 500) { orders(limitTo: 500) { id } } }",
        settings=Settings(max_page_size=4),
    )
    assert len(outcome.data["bakeries"]) == 4
    assert all(len(b["orders"]) == 4 for b in outcome.data["bakeries"])


async def test_negative_first_is_an_error_in_that_operation(read_engine):
    outcome = await run(read_engine, "{ bakeries(first: -1) { id } }")
    assert outcome.data is None
    assert outcome.errors[0]["message"] == "first must be zero or more, got -1"
    assert outcome.errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert outcome.statements == 0


async def test_lookups_by_id(read_engine):
    outcome = await run(
        read_engine,
        '{ a: bakery(id: "3") { id name } b: bakery(id: "999999") { id } c: bakery(id: "x") { id }'
        ' o: cakeOrder(id: "5") { id bakery { id } } p: cakeOrder(id: "0") { id } }',
    )
    assert outcome.errors == []
    assert outcome.data["a"]["id"] == "3"
    assert outcome.data["b"] is None and outcome.data["c"] is None and outcome.data["p"] is None
    assert outcome.data["o"]["id"] == "5"


async def test_root_lookups_by_id_share_one_statement(read_engine):
    outcome = await run(
        read_engine,
        '{ a: cakeOrder(id: "1") { id } b: cakeOrder(id: "2") { id } '
        'c: cakeOrder(id: "3") { id } }',
    )
    assert [outcome.data[k]["id"] for k in "abc"] == ["1", "2", "3"]
    assert outcome.statements == 1


async def test_products_and_find_baker(read_engine):
    outcome = await run(
        read_engine, '{ products { id name stock } findBaker(lastName: "Nobody") { id } }'
    )
    async with read_engine.connect() as conn:
        names = (await conn.execute(text("SELECT name FROM products ORDER BY id"))).scalars().all()
    assert [p["name"] for p in outcome.data["products"]] == list(names)
    assert outcome.data["findBaker"] is None


async def test_region_filter_rejects_unknown_regions(read_engine):
    outcome = await run(read_engine, "{ bakeries(region: MOON) { id } }")
    assert outcome.data is None
    assert "MOON" in outcome.errors[0]["message"]
    assert outcome.statements == 0


async def test_depth_limit_is_an_error_naming_the_limit(read_engine):
    # Deep but cheap: a query over the cost limit whatever its variables is refused for its cost
    # before validation (tests/schema/test_cost.py).
    deep = '{ bakery(id: "1") { manager { bakery { manager { bakery { id } } } } } }'
    outcome = await run(read_engine, deep, settings=Settings(max_query_depth=3))
    assert outcome.data is None
    assert "exceeds maximum operation depth of 3" in outcome.errors[0]["message"]
    assert outcome.statements == 0


async def test_operations_sharing_a_context_share_their_root_reads(read_engine):
    """Two different operations of one request asking the same root question: one statement for
    the root, one per batched level, whatever else they select."""
    context = Context.create(read_engine, Settings())
    with count_statements(read_engine) as log:
        first, second, other = await asyncio.gather(
            run(read_engine, "{ bakeries(first: 5) { name } products { id } }", context=context),
            run(
                read_engine,
                "{ bakeries(first: 5) { id orderCount } products { name } }",
                context=context,
            ),
            run(read_engine, "{ bakeries(first: 2) { id } }", context=context),
        )
    assert [b["name"] for b in first.data["bakeries"]] and len(second.data["bakeries"]) == 5
    assert len(other.data["bakeries"]) == 2
    # bakeries(first: 5), bakeries(first: 2), products, orderCount
    assert log.count == 4, log.statements


async def test_ids_past_the_integer_key_range_match_nothing(read_engine):
    # 3000000000 fits no 32-bit key (PostgreSQL refuses it as a parameter); the other no 64-bit
    # integer (SQLite refuses it): neither is an id, so like "x" they find nothing.
    outcome = await run(
        read_engine,
        '{ a: bakery(id: "3000000000") { id } b: bakery(id: "99999999999999999999") { id }'
        ' c: cakeOrder(id: "2147483648") { id } d: bakery(id: "2147483647") { id } }',
    )
    assert outcome.errors == []
    assert outcome.data == {"a": None, "b": None, "c": None, "d": None}


async def test_find_baker_with_a_nul_in_the_name_finds_nobody(read_engine):
    outcome = await run(read_engine, '{ findBaker(lastName: "Ba\\u0000ker") { id } }')
    assert outcome.errors == []
    assert outcome.data == {"findBaker": None}


async def test_limit_errors_name_the_setting_to_change(read_engine):
    aliases = "{ " + " ".join(f"a{i}: products {{ id }}" for i in range(3)) + " }"
    outcome = await run(read_engine, aliases, settings=Settings(max_aliases=2))
    assert outcome.errors[0]["message"] == (
        "3 aliases found. Allowed: 2 (a server limit, set by BATCHERY_MAX_ALIASES)."
    )
    outcome = await run(
        read_engine, "{ products { id name stock } }", settings=Settings(max_query_tokens=5)
    )
    assert "set by BATCHERY_MAX_QUERY_TOKENS" in outcome.errors[0]["message"]
    deep = "{ bakeries { suppliers { bakeries { id } } } }"
    outcome = await run(read_engine, deep, settings=Settings(max_query_depth=2))
    assert outcome.errors[0]["message"].endswith(
        "(a server limit, set by BATCHERY_MAX_QUERY_DEPTH)."
    )
