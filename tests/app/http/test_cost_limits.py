"""Cost limits on `/graphql`: an operation over its limit fails alone and runs nothing; a request
over its limit is refused whole (422) and runs nothing; `extensions.cost` on every operation; the
`GraphQL-Cost: validate` header; the cost metrics."""

from __future__ import annotations

import asyncio
import gc
import re
import time
from pathlib import Path

import pytest

from app.db.statements import count_statements

KILLER = (
    "{ bakeries { suppliers { bakeries { suppliers { bakeries { suppliers { bakeries { suppliers {"
    " bakeries { suppliers { bakeries { suppliers { bakeries { suppliers { id } } } } } } } } } } }"
    " } } } }"
)
# 200 aliases (the alias limit) of a page of bakeries with 1000 orders each.
ALIASES = (
    "{ "
    + " ".join(f"a{i}: bakeries {{ orders(limitTo: 1000) {{ id }} }}" for i in range(200))
    + " }"
)
SMALL = "{ bakeries(first: 2) { id orders(limitTo: 3) { id } } }"
SMALL_COST = 10 + 2 * (1 + 10 + 3 * 1)  # 38
SMALL_ACTUAL = SMALL_COST  # the test data has 2 bakeries with 3 orders each and more


def rss_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))


@pytest.mark.parametrize("query", [KILLER, ALIASES], ids=["suppliers-fan-out", "200-aliases"])
async def test_a_huge_operation_is_refused_at_once_running_nothing(client, engine, query):
    # This thread's CPU time, not wall time: the work the refusal takes, whatever else the machine
    # (or the test session's other threads) runs. The session's garbage is collected first, so a
    # full collection of the test process's heap does not land in the measure (a server freezes
    # its start-up objects: app/memory.py).
    gc.collect()
    before = rss_kib()
    started = time.thread_time()
    with count_statements(engine) as log:
        response = await client.post("/graphql", json={"query": query})
    elapsed = time.thread_time() - started
    assert log.count == 0
    assert elapsed < 0.1  # parse, and one walk of the document (~20 ms for 200 aliases)
    assert rss_kib() - before < 50 * 1024
    assert response.status_code == 200  # a lone operation's error, as for a validation error
    body = response.json()
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "COST_LIMIT_EXCEEDED"
    assert error["extensions"]["setting"] == "BATCHERY_MAX_OPERATION_COST"
    requested = body["extensions"]["cost"]["requestedQueryCost"]
    assert f"cost is {requested}, over the limit of 500000" in error["message"]
    assert body["extensions"]["cost"] == {"requestedQueryCost": requested, "actualQueryCost": None}


async def test_a_batch_of_new_documents_lets_other_requests_run_between_them(client, engine):
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:  # counts the turns the event loop gives to another task
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    # 50 documents of 10 + 1000 * (1 + 10 + 1000) each: every one refused for its cost.
    batch = [
        {"query": f"{{ a{i}: bakeries(first: 1000) {{ orders(limitTo: 1000) {{ id }} }} }}"}
        for i in range(50)
    ]

    async def ticks_during(request: list[dict]) -> int:
        nonlocal ticks
        ticks = 0
        with count_statements(engine) as log:
            response = await client.post("/graphql", json=request)
        assert log.count == 0
        assert {e["errors"][0]["extensions"]["code"] for e in response.json()} == {
            "COST_LIMIT_EXCEEDED"
        }
        return ticks

    task = asyncio.create_task(ticker())
    try:
        fresh = await ticks_during(batch)  # each document parsed and costed: a turn after each
        cached = await ticks_during(batch)  # the same documents, cached: no turn of their own
    finally:
        stop.set()
        await task
    assert fresh - cached >= 45


async def test_the_200_alias_query_costs_what_each_alias_multiplies(client):
    response = await client.post(
        "/graphql", json={"query": ALIASES}, headers={"GraphQL-Cost": "validate"}
    )
    # each alias: 10 + 100 bakeries * (1 + 10 + 1000 orders * 1)
    assert response.json()["extensions"]["cost"]["requestedQueryCost"] == 200 * (
        10 + 100 * (1 + 10 + 1000)
    )


async def test_every_operation_reports_its_requested_and_actual_cost(client):
    response = await client.post("/graphql", json={"query": SMALL})
    body = response.json()
    assert body["extensions"]["cost"] == {
        "requestedQueryCost": SMALL_COST,
        "actualQueryCost": SMALL_ACTUAL,
    }


async def test_the_actual_cost_follows_the_rows_found(client):
    # the test database has 6 bakeries: asked for 100 (10 + 100 * 1), found 6 (10 + 6 * 1)
    response = await client.post("/graphql", json={"query": "{ bakeries { id } }"})
    assert response.json()["extensions"]["cost"] == {
        "requestedQueryCost": 110,
        "actualQueryCost": 16,
    }


async def test_in_a_batch_an_over_cost_operation_fails_alone(client, engine):
    batch = [{"query": SMALL}, {"query": KILLER}, {"query": '{ bakery(id: "1") { id } }'}]
    response = await client.post("/graphql", json=batch)
    assert response.status_code == 200
    first, refused, third = response.json()
    assert first["data"]["bakeries"][0]["id"] == "1"
    assert first["extensions"]["cost"]["requestedQueryCost"] == SMALL_COST
    assert "data" not in refused
    assert refused["errors"][0]["extensions"]["code"] == "COST_LIMIT_EXCEEDED"
    assert third == {
        "data": {"bakery": {"id": "1"}},
        "extensions": {"cost": {"requestedQueryCost": 11, "actualQueryCost": 11}},
    }


async def test_a_batch_over_the_request_limit_is_refused_whole_running_nothing(app_client, engine):
    # three operations of 38 each: 114, over a request limit of 100 (each is under 50)
    async with app_client(max_operation_cost=50, max_request_cost=100) as client:
        with count_statements(engine) as log:
            response = await client.post("/graphql", json=[{"query": SMALL}] * 3)
        within = await client.post("/graphql", json=[{"query": SMALL}] * 2)
    assert log.count == 0
    assert response.status_code == 422
    assert response.json() == {
        "errors": [
            {
                "message": "The request's operations cost 114 together, over the limit of 100 "
                "for one request: send fewer or smaller operations, or split the batch (a server "
                "limit, set by BATCHERY_MAX_REQUEST_COST). Nothing was run.",
                "extensions": {
                    "code": "COST_LIMIT_EXCEEDED",
                    "requestedQueryCost": 114,
                    "limit": 100,
                    "setting": "BATCHERY_MAX_REQUEST_COST",
                },
            }
        ]
    }
    assert within.status_code == 200
    assert [len(element["data"]["bakeries"]) for element in within.json()] == [2, 2]


async def test_operations_refused_alone_do_not_count_towards_the_request(app_client):
    async with app_client(max_operation_cost=50, max_request_cost=100) as client:
        response = await client.post(
            "/graphql", json=[{"query": SMALL}, {"query": KILLER}, {"query": SMALL}]
        )
    assert response.status_code == 200
    codes = [e.get("errors", [{}])[0].get("extensions", {}).get("code") for e in response.json()]
    assert codes == [None, "COST_LIMIT_EXCEEDED", None]


async def test_the_validate_header_costs_every_operation_and_runs_none(client, engine):
    batch = [
        {"query": SMALL},
        {"query": KILLER},
        {"query": 'mutation { addMoney(orderId: "1", dollarsToAdd: 5) { id } }'},
    ]
    with count_statements(engine) as log:
        response = await client.post("/graphql", json=batch, headers={"GraphQL-Cost": "validate"})
    assert log.count == 0
    assert response.status_code == 200
    small, killer, mutation = response.json()
    assert small == {
        "extensions": {"cost": {"requestedQueryCost": SMALL_COST, "actualQueryCost": None}}
    }
    assert killer["errors"][0]["extensions"]["code"] == "COST_LIMIT_EXCEEDED"
    # addMoney: 10 + 1 * (1 + 0)
    assert mutation == {"extensions": {"cost": {"requestedQueryCost": 11, "actualQueryCost": None}}}


async def test_the_report_header_runs_and_reports(client):
    response = await client.post(
        "/graphql", json={"query": SMALL}, headers={"GraphQL-Cost": "report"}
    )
    body = response.json()
    assert len(body["data"]["bakeries"]) == 2
    assert body["extensions"]["cost"]["actualQueryCost"] == SMALL_ACTUAL


async def test_an_unknown_cost_header_is_a_400_naming_the_values(client, engine):
    with count_statements(engine) as log:
        response = await client.post(
            "/graphql", json={"query": SMALL}, headers={"GraphQL-Cost": "maybe"}
        )
    assert log.count == 0
    assert response.status_code == 400
    message = response.json()["errors"][0]["message"]
    assert "`report`" in message and "`validate`" in message


def sample(metrics_text: str, name: str, **labels: str) -> float:
    rendered = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{name}{{{rendered}}} (\S+)$" if labels else rf"^{name} (\S+)$"
    match = re.search(pattern, metrics_text, re.M)
    return float(match.group(1)) if match else 0.0


async def test_metrics_count_refusals_and_observe_requested_costs(app_client):
    async with app_client(max_operation_cost=50, max_request_cost=100) as client:
        await client.post("/graphql", json=[{"query": SMALL}, {"query": KILLER}])
        await client.post("/graphql", json=[{"query": SMALL}] * 3)
        text = (await client.get("/metrics")).text
    assert sample(text, "batchery_graphql_cost_refused_operations_total", limit="operation") == 1
    assert sample(text, "batchery_graphql_cost_refused_operations_total", limit="request") == 3
    assert sample(text, "batchery_graphql_operation_cost_count") == 5
    assert sample(text, "batchery_graphql_operation_cost_bucket", le="100.0") == 4
