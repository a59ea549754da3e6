"""The batch helper's rules on real rows: two managers for one bakery, and a failing database."""

from __future__ import annotations

from sqlalchemy import insert, text

from app.db import models
from tests.helpers import run


async def test_a_bakery_with_two_managers_gets_an_error_and_its_siblings_resolve(engine):
    async with engine.begin() as conn:
        await conn.execute(
            insert(models.Baker),
            [{"first_name": "Second", "last_name": "Boss", "bakery_id": 2, "is_manager": True}],
        )
    outcome = await run(engine, "{ bakeries { id manager { firstName } } }")
    assert [error["path"] for error in outcome.errors] == [["bakeries", 1, "manager"]]
    assert "at most one result" in outcome.errors[0]["message"]
    managers = {b["id"]: b["manager"] for b in outcome.data["bakeries"]}
    assert managers["2"] is None
    assert managers["1"] is not None and managers["3"] is not None
    assert outcome.statements == 2


async def test_a_failing_statement_is_a_field_error_and_the_next_request_works(engine):
    query = "{ bakeries { id name manager { id } } }"
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE bakers RENAME TO bakers_away"))
    try:
        broken = await run(engine, query)
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE bakers_away RENAME TO bakers"))
    # Every bakery's manager failed, and nothing about the database leaks to the client.
    assert len(broken.errors) == len(broken.data["bakeries"])
    assert {e["message"] for e in broken.errors} == {"Internal server error"}
    assert all(b["manager"] is None and b["name"] for b in broken.data["bakeries"])
    healthy = await run(engine, query)
    assert healthy.errors == []
    assert any(b["manager"] for b in healthy.data["bakeries"])
