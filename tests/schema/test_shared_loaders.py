"""The query operations of one HTTP request share their loaders: K of them cost the statements of
one (shared/contract/batch-resolvers.md). The transport runs a batch's operations concurrently
on one context; this does the same, without HTTP."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from app.db.statements import count_statements
from app.settings import Settings
from schema import guards, schema
from schema.context import Context
from schema.execution import Executor, GraphQLRequest

QUERIES = [
    "{ bakeries { orders(limitTo: 50) { id } } }",
    "{ bakeries { manager { id } suppliers { id bakeries { id } } orders { bakery { name } } } }",
    "{ bakeries(first: 10) { name orders(limitTo: 5) { id writtenPhrase } } }",
]


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "graphql-core"])
@pytest.mark.parametrize("query", QUERIES)
async def test_a_batch_of_k_queries_costs_the_statements_of_one(
    read_engine, query, compiled, monkeypatch
):
    # Builders give the event loop a turn every 5 ms of wall time (schema/guards.py); on a busy
    # machine that can fall in the middle of a level, and the batch then leaves without the
    # paused operation's keys (one more statement: a known limit, in docs/performance.md). The
    # promise tested here is the batching itself, so no turn is given.
    monkeypatch.setattr(guards, "SLICE_SECONDS", 3600.0)
    settings = Settings(compiled_execution=compiled)
    executor = Executor(schema, settings)
    with count_statements(read_engine) as one:
        alone = await executor.run(GraphQLRequest(query), Context.create(read_engine, settings))
    context = Context.create(read_engine, settings)
    with count_statements(read_engine) as batch:
        results = await asyncio.gather(
            *(executor.run(GraphQLRequest(query), context) for _ in range(5))
        )
    assert batch.count == one.count, batch
    assert {orjson.dumps(r.formatted) for r in results} == {orjson.dumps(alone.formatted)}
    assert "errors" not in alone.formatted


async def test_different_pages_in_one_batch_each_get_their_own(read_engine):
    settings = Settings()
    executor = Executor(schema, settings)
    context = Context.create(read_engine, settings)
    two, three, north = await asyncio.gather(
        executor.run(GraphQLRequest("{ bakeries(first: 2) { id } }"), context),
        executor.run(GraphQLRequest("{ bakeries(first: 3) { id } }"), context),
        executor.run(GraphQLRequest("{ bakeries(region: NORTH_EAST) { region } }"), context),
    )
    assert [b["id"] for b in two.formatted["data"]["bakeries"]] == ["1", "2"]
    assert [b["id"] for b in three.formatted["data"]["bakeries"]] == ["1", "2", "3"]
    assert {b["region"] for b in north.formatted["data"]["bakeries"]} == {"NORTH_EAST"}
