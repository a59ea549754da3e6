"""Writes under contention: on SQLite they queue in-process, one at a time and in the order they
asked; one that cannot get the database within BATCHERY_DB_WRITE_TIMEOUT_SECONDS is told
DATABASE_BUSY / 503 with Retry-After, never an internal error, and writes nothing."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.reads import bakeries, orders
from app.db.transactions import write_queue
from tests.helpers import without_cost

pytestmark = pytest.mark.asyncio


def add_money(order_id: int, dollars: int) -> dict[str, str]:
    return {
        "query": f'mutation {{ addMoney(orderId: "{order_id}", dollarsToAdd: {dollars}) '
        "{ currentTotal } }"
    }


def new_bakery() -> dict[str, str]:
    return {"name": f"Queued {uuid.uuid4().hex[:10]}", "region": "CENTRAL"}


async def count_bakeries(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(bakeries))).scalar_one())


async def total_of(engine: AsyncEngine, order_id: int) -> int:
    async with engine.connect() as conn:
        statement = select(orders.c.current_total).where(orders.c.id == order_id)
        return int((await conn.execute(statement)).scalar_one())


def require_sqlite(engine: AsyncEngine) -> str:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's file lock")
    assert engine.url.database
    return engine.url.database


@pytest.mark.parametrize("lock", ["BEGIN IMMEDIATE", "BEGIN EXCLUSIVE"])
async def test_a_write_kept_from_the_sqlite_lock_is_busy_not_an_internal_error(
    app_client, engine, lock
):
    path = require_sqlite(engine)
    before = await count_bakeries(engine), await total_of(engine, 1)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute(lock)  # another process's writer, as far as this server can tell
    try:
        async with app_client(db_write_timeout_seconds=0.2) as client:
            # Reads go on (WAL): only writes wait for the lock.
            read = await client.post("/graphql", json={"query": "{ bakery(id: 1) { id } }"})
            assert without_cost(read.json()) == {"data": {"bakery": {"id": "1"}}}

            mutation = (await client.post("/graphql", json=add_money(1, 5))).json()
            assert [e["extensions"]["code"] for e in mutation["errors"]] == ["DATABASE_BUSY"]
            assert "BATCHERY_DB_WRITE_TIMEOUT_SECONDS" in mutation["errors"][0]["message"]

            bulk = {"operation": "CREATE", "records": [{"data": new_bakery()}]}
            for response in (
                await client.post("/api/bakeries", json=new_bakery()),
                await client.post("/api/bakeries/bulk", json=bulk),
                await client.post(
                    "/api/bakeries", json=new_bakery(), headers={"Idempotency-Key": "busy-1"}
                ),
            ):
                assert response.status_code == 503, response.text
                assert response.json()["error"]["code"] == "DATABASE_BUSY"
                assert int(response.headers["retry-after"]) > 0

            graphql_bulk = {
                "query": "mutation($r: BakeryBatchRequest!) { batchBakeries(request: $r) "
                "{ success error { code } } }",
                "variables": {"r": {"operation": "CREATE", "records": [{"data": new_bakery()}]}},
            }
            answer = (await client.post("/graphql", json=graphql_bulk)).json()
            assert "INTERNAL" not in str(answer)
            assert "DATABASE_BUSY" in str(answer)

            holder.execute("ROLLBACK")
            assert (await count_bakeries(engine), await total_of(engine, 1)) == before
            retried = (await client.post("/graphql", json=add_money(1, 5))).json()
            assert retried["data"]["addMoney"]["currentTotal"] == before[1] + 5
            assert (await client.post("/api/bakeries", json=new_bakery())).status_code == 201
    finally:
        holder.close()


async def test_a_write_that_waits_in_the_queue_past_its_deadline_is_busy(app_client, engine):
    require_sqlite(engine)
    queue = write_queue(engine)
    assert queue is not None
    async with app_client(db_write_timeout_seconds=0.2) as client:
        async with queue.turn():  # a long write of this process holds the turn
            mutation = (await client.post("/graphql", json=add_money(1, 5))).json()
            created = await client.post("/api/bakeries", json=new_bakery())
        assert [e["extensions"]["code"] for e in mutation["errors"]] == ["DATABASE_BUSY"]
        assert created.status_code == 503 and created.headers["retry-after"]
        assert "errors" not in (await client.post("/graphql", json=add_money(1, 5))).json()


async def test_in_process_writers_are_served_in_the_order_they_asked(app_client, engine):
    require_sqlite(engine)
    queue = write_queue(engine)
    assert queue is not None
    start = await total_of(engine, 1)
    async with app_client() as client:
        tasks: list[asyncio.Task[Any]] = []
        async with queue.turn():
            for dollars in (1, 10, 100, 1000):
                tasks.append(
                    asyncio.create_task(client.post("/graphql", json=add_money(1, dollars)))
                )
                for _ in range(10_000):  # let it run until it stands in the queue
                    if queue.waiting == len(tasks):
                        break
                    await asyncio.sleep(0)
                assert queue.waiting == len(tasks)
        totals = [(await task).json()["data"]["addMoney"]["currentTotal"] for task in tasks]
    assert totals == [start + 1, start + 11, start + 111, start + 1111]


async def test_many_concurrent_writes_all_succeed_one_writer_at_a_time(app_client, engine):
    contenders, most = 0, 0

    def began(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        nonlocal contenders, most
        if statement.startswith("BEGIN IMMEDIATE"):  # asking SQLite for the write lock
            contenders += 1
            most = max(most, contenders)

    def ended(conn: Any) -> None:
        nonlocal contenders
        if conn.get_execution_options().get("sqlite_begin") == "IMMEDIATE":
            contenders -= 1

    listeners = [("before_cursor_execute", began), ("commit", ended), ("rollback", ended)]
    for name, listener in listeners:
        event.listen(engine.sync_engine, name, listener)
    bakeries_before, total_before = await count_bakeries(engine), await total_of(engine, 2)
    try:
        async with app_client() as client:
            bulk = {
                "operation": "CREATE",
                "records": [{"data": new_bakery()} for _ in range(5)],
                "options": {"atomic": True},
            }
            requests = [
                *(client.post("/graphql", json=add_money(2, 3)) for _ in range(20)),
                *(
                    client.post(
                        "/api/bakeries/bulk",
                        json={**bulk, "records": [{"data": new_bakery()} for _ in range(5)]},
                    )
                    for _ in range(20)
                ),
                *(
                    client.post(
                        "/api/bakeries",
                        json=new_bakery(),
                        headers={"Idempotency-Key": uuid.uuid4().hex},
                    )
                    for _ in range(20)
                ),
            ]
            responses = await asyncio.gather(*requests)
    finally:
        for name, listener in listeners:
            event.remove(engine.sync_engine, name, listener)
    assert [r.status_code for r in responses] == [200] * 40 + [201] * 20
    assert all("errors" not in r.json() for r in responses[:20])
    assert await count_bakeries(engine) == bakeries_before + 20 * 5 + 20
    assert await total_of(engine, 2) == total_before + 20 * 3
    if engine.dialect.name == "sqlite":
        assert most == 1, most  # never two writers racing for the file lock
