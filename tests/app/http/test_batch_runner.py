"""The batch runner with the interleaving fixed by the test: a query's loaders are filled before a
mutation writes the same rows, and what reads them afterwards must be fresh."""

from __future__ import annotations

import asyncio
import gc

from sqlalchemy import text

from app.http.batch import STOPPED_DISCONNECT, BatchRunner
from app.http.params import operation_from_object
from app.http.planning import plan
from app.settings import Settings
from schema import schema
from schema.context import Context
from schema.execution import Executor

ORDERS = '{ bakery(id: "1") { orders(limitTo: 5) { id currentTotal } } }'
ADD = (
    "mutation($id: ID!) { addMoney(orderId: $id, dollarsToAdd: 50) "
    "{ currentTotal bakery { orders(limitTo: 5) { id currentTotal } } } }"
)


def totals(orders: list[dict]) -> dict[str, int]:
    return {order["id"]: order["currentTotal"] for order in orders}


async def run(runner: BatchRunner, executor: Executor, context: Context, *operations: dict):
    planned = [plan(executor, operation_from_object(op)) for op in operations]
    return [outcome.result for outcome in await runner.run(planned, context)]


async def test_a_mutation_never_reads_what_the_queries_cached_before_its_write(engine):
    settings = Settings()
    executor = Executor(schema, settings)
    runner = BatchRunner(executor, settings)
    shared = Context.create(engine, settings)

    # A query of this request has already loaded the bakery's newest orders.
    [loaded] = await run(runner, executor, shared, {"query": ORDERS})
    order_id = loaded.data["bakery"]["orders"][0]["id"]
    before = totals(loaded.data["bakery"]["orders"])[order_id]

    [changed] = await run(runner, executor, shared, {"query": ADD, "variables": {"id": order_id}})
    assert changed.errors is None
    assert changed.data["addMoney"]["currentTotal"] == before + 50
    assert totals(changed.data["addMoney"]["bakery"]["orders"])[order_id] == before + 50

    # And a query that loads after the write does not get the value cached before it.
    [again] = await run(runner, executor, shared, {"query": ORDERS})
    assert totals(again.data["bakery"]["orders"])[order_id] == before + 50
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT current_total FROM cake_orders WHERE id = :id"), {"id": int(order_id)}
            )
        ).scalar_one()
    assert stored == before + 50


async def test_queries_of_one_request_share_their_loaders(engine):
    settings = Settings()
    executor = Executor(schema, settings)
    runner = BatchRunner(executor, settings)
    shared = Context.create(engine, settings)
    await run(runner, executor, shared, {"query": ORDERS})
    loaders = shared.loaders.count
    assert loaders > 0
    await run(runner, executor, shared, {"query": ORDERS.replace('"1"', '"2"')})
    # The same loaders served the second query: none was added for it.
    assert shared.loaders.count == loaders


async def test_a_batch_stopped_by_the_client_leaving_leaves_no_unretrieved_error(engine):
    # Cancelling the batch's gather made it finish with a CancelledError nobody read: asyncio
    # logged "_GatheringFuture exception was never retrieved" and a traceback for every
    # client that left a batch (or hit the deadline), a log any client could flood.
    settings = Settings()
    executor = Executor(schema, settings)
    runner = BatchRunner(executor, settings)
    loop = asyncio.get_running_loop()
    reported: list[dict] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, details: reported.append(details))
    try:
        planned = [
            plan(executor, operation_from_object({"query": ORDERS})),
            plan(executor, operation_from_object({"query": ORDERS.replace('"1"', '"2"')})),
        ]

        async def gone() -> None:  # the client has left before anything finished
            return None

        outcomes = await runner.run(planned, Context.create(engine, settings), gone)
        gc.collect()
    finally:
        loop.set_exception_handler(previous)
    assert [outcome.stopped for outcome in outcomes] == [STOPPED_DISCONNECT] * 2
    assert reported == []
