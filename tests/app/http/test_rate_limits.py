"""Rate limits on `/graphql`: a request is charged the sum of its operations' cost before any of
them runs; over budget it gets 429 with `Retry-After` and the `x-ratelimit-*` headers, and nothing
runs (no SQL statement)."""

from __future__ import annotations

import math
import socket
import time
from datetime import datetime

import httpx
import pytest

from app.db.statements import count_statements
from app.main import create_app
from tests.helpers import without_cost

QUERY = '{ bakery(id: "1") { name } }'
# What QUERY is charged: its static cost (README, Query cost): bakery, a database read (weight
# 10), returns one object (1).
QUERY_COST = 10 + 1
RATE_LIMIT = "{ rateLimit { cost limit remaining used resetAt } }"
RATE_LIMIT_COST = 1  # one object, no database
BAD = "{ bakery(id: "  # fails to parse: never runs, costs nothing
HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-used", "x-ratelimit-reset")


def limited(budget: str, **changes: object) -> dict[str, object]:
    return {"rate_limit_enabled": True, "rate_limit": budget, **changes}


def numbers(response: httpx.Response) -> tuple[int, int, int]:
    """(limit, remaining, used) from the headers."""
    h = response.headers
    return int(h["x-ratelimit-limit"]), int(h["x-ratelimit-remaining"]), int(h["x-ratelimit-used"])


def throttled(client: httpx.AsyncClient, api: str = "graphql") -> tuple[float, float]:
    registry = client.app.state.metrics.registry  # type: ignore[attr-defined]
    labels = {"api": api}
    requests = registry.get_sample_value("batchery_throttled_requests_total", labels) or 0.0
    operations = registry.get_sample_value("batchery_throttled_operations_total", labels) or 0.0
    return requests, operations


async def test_requests_within_the_budget_pass_and_the_next_gets_429_without_running(
    app_client, engine
):
    async with app_client(**limited(f"{3 * QUERY_COST}/minute")) as client:
        for spent in (1, 2, 3):
            response = await client.post("/graphql", json={"query": QUERY})
            assert response.status_code == 200, response.text
            assert "errors" not in response.json()
            assert numbers(response) == (
                3 * QUERY_COST,
                (3 - spent) * QUERY_COST,
                spent * QUERY_COST,
            )

        started = time.time()
        with count_statements(engine) as log:
            refused = await client.post("/graphql", json={"query": QUERY})
        assert log.count == 0
        assert refused.status_code == 429
        retry_after = int(refused.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert numbers(refused) == (3 * QUERY_COST, 0, 3 * QUERY_COST)
        reset = int(refused.headers["x-ratelimit-reset"])
        assert started < reset <= math.ceil(started) + 61
        (error,) = refused.json()["errors"]
        assert error["extensions"]["code"] == "THROTTLED"
        assert error["extensions"]["setting"] == "BATCHERY_RATE_LIMIT"
        assert error["extensions"]["cost"] == QUERY_COST
        assert error["extensions"]["remaining"] == 0
        assert f"this request costs {QUERY_COST} points" in error["message"]
        assert f"{3 * QUERY_COST} points per minute" in error["message"]
        assert "BATCHERY_RATE_LIMIT" in error["message"]
        assert throttled(client) == (1.0, 1.0)


async def test_a_batch_of_k_operations_is_charged_k_operations_cost(app_client, engine):
    async with app_client(**limited(f"{10 * QUERY_COST}/minute")) as client:
        response = await client.post("/graphql", json=[{"query": QUERY}] * 3)
        assert response.status_code == 200
        assert numbers(response) == (10 * QUERY_COST, 7 * QUERY_COST, 3 * QUERY_COST)

        # 8 operations do not fit in the 7 left: the whole batch is refused, none runs, and
        # nothing is spent.
        with count_statements(engine) as log:
            refused = await client.post("/graphql", json=[{"query": QUERY}] * 8)
        assert log.count == 0
        assert refused.status_code == 429
        assert len(refused.json()["errors"]) == 1  # one error for the request, not an array
        assert refused.json()["errors"][0]["extensions"]["cost"] == 8 * QUERY_COST
        assert numbers(refused) == (10 * QUERY_COST, 7 * QUERY_COST, 3 * QUERY_COST)
        assert throttled(client) == (1.0, 8.0)

        # 7 do.
        response = await client.post("/graphql", json=[{"query": QUERY}] * 7)
        assert response.status_code == 200
        assert numbers(response) == (10 * QUERY_COST, 0, 10 * QUERY_COST)


async def test_operations_that_cannot_run_cost_nothing(app_client):
    async with app_client(**limited(f"{5 * QUERY_COST}/minute")) as client:
        response = await client.post("/graphql", json=[{"query": BAD}, {"query": QUERY}])
        assert response.status_code == 200
        assert numbers(response)[2] == QUERY_COST
        alone = await client.post("/graphql", json={"query": BAD})
        assert numbers(alone)[2] == QUERY_COST


async def test_every_response_of_a_batch_reports_the_throttle_status(app_client):
    async with app_client(**limited(f"{600 * QUERY_COST}/minute")) as client:
        response = await client.post("/graphql", json=[{"query": QUERY}, {"query": BAD}])
    expected = {
        "maximumAvailable": 600 * QUERY_COST,
        "currentlyAvailable": 599 * QUERY_COST,
        "restoreRate": 10.0 * QUERY_COST,
    }
    for element in response.json():
        assert element["extensions"]["cost"]["throttleStatus"] == expected


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "graphql-core"])
async def test_the_rate_limit_field_agrees_with_the_headers(app_client, compiled):
    async with app_client(**limited("100/hour", compiled_execution=compiled)) as client:
        await client.post("/graphql", json={"query": QUERY})
        response = await client.post("/graphql", json=[{"query": RATE_LIMIT}, {"query": QUERY}])
    assert response.status_code == 200
    first, second = response.json()
    assert "errors" not in first, first
    limit, remaining, used = numbers(response)
    assert used == 2 * QUERY_COST + RATE_LIMIT_COST
    rate_limit = first["data"]["rateLimit"]
    reset_at = datetime.fromisoformat(rate_limit.pop("resetAt"))
    assert reset_at.timestamp() == int(response.headers["x-ratelimit-reset"])
    assert rate_limit == {
        "cost": RATE_LIMIT_COST,
        "limit": limit,
        "remaining": remaining,
        "used": used,
    }
    assert "errors" not in second


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "graphql-core"])
async def test_the_rate_limit_field_names_the_reset_time_of_the_headers(app_client, compiled):
    async with app_client(**limited("100/hour", compiled_execution=compiled)) as client:
        response = await client.post("/graphql", json={"query": RATE_LIMIT})
    rate_limit = response.json()["data"]["rateLimit"]
    reset_at = datetime.fromisoformat(rate_limit["resetAt"])
    assert reset_at.timestamp() == int(response.headers["x-ratelimit-reset"])
    assert (rate_limit["limit"], rate_limit["remaining"], rate_limit["used"]) == numbers(response)
    assert rate_limit["cost"] == RATE_LIMIT_COST


async def test_rate_limits_are_off_by_default(app_client):
    async with app_client() as client:
        for _ in range(3):
            response = await client.post("/graphql", json={"query": RATE_LIMIT})
            assert response.status_code == 200
            assert without_cost(response.json()) == {"data": {"rateLimit": None}}
            assert not any(name in response.headers for name in HEADERS)


async def test_a_get_query_is_charged_and_refused_like_a_post(app_client, engine):
    async with app_client(**limited(f"{QUERY_COST}/minute")) as client:
        first = await client.get("/graphql", params={"query": QUERY})
        assert first.status_code == 200
        with count_statements(engine) as log:
            refused = await client.get("/graphql", params={"query": QUERY})
        assert (refused.status_code, log.count) == (429, 0)
        assert "retry-after" in refused.headers


# ---- refunds ----

# On the test database (6 bakeries) it asks for 100 and gets 6: requested 10 + 100, actual 10 + 6.
PAGE = "{ bakeries(first: 100) { name } }"
PAGE_REQUESTED, PAGE_ACTUAL = 110, 16


async def test_what_an_operation_did_not_use_is_given_back(app_client):
    async with app_client(**limited("200/minute")) as client:
        response = await client.post("/graphql", json={"query": PAGE})
        assert response.status_code == 200
        cost = response.json()["extensions"]["cost"]
        assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (
            PAGE_REQUESTED,
            PAGE_ACTUAL,
        )
        assert numbers(response) == (200, 200 - PAGE_ACTUAL, PAGE_ACTUAL)
        assert cost["throttleStatus"]["currentlyAvailable"] == 200 - PAGE_ACTUAL
        # The refund is what lets the next one in: charged 110 up front against 184 left.
        again = await client.post("/graphql", json={"query": PAGE})
        assert again.status_code == 200
        assert numbers(again)[2] == 2 * PAGE_ACTUAL


async def test_the_rate_limit_field_shows_the_charge_before_the_refund(app_client):
    async with app_client(**limited("1000/minute")) as client:
        response = await client.post("/graphql", json=[{"query": PAGE}, {"query": RATE_LIMIT}])
    rate_limit = response.json()[1]["data"]["rateLimit"]
    assert rate_limit["used"] == PAGE_REQUESTED + RATE_LIMIT_COST
    assert numbers(response)[2] == PAGE_ACTUAL + RATE_LIMIT_COST


async def test_an_operation_whose_variables_do_not_coerce_is_given_back_whole(app_client):
    query = "query($id: ID!) { bakery(id: $id) { name } }"
    async with app_client(**limited("100/minute")) as client:
        response = await client.post("/graphql", json=[{"query": query}, {"query": QUERY}])
        assert response.status_code == 200
        first, _ = response.json()
        assert first["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert numbers(response)[2] == QUERY_COST


async def test_rest_and_graphql_spend_one_budget(app_client):
    async with app_client(**limited(f"{2 * QUERY_COST}/minute")) as client:
        assert (await client.get("/api/bakeries/1")).status_code == 200  # 11, as QUERY
        graphql = await client.post("/graphql", json={"query": QUERY})
        assert (graphql.status_code, numbers(graphql)[2]) == (200, 2 * QUERY_COST)
        assert (await client.get("/api/bakeries/1")).status_code == 429


# ---- who the client is ----


async def test_clients_at_different_addresses_have_budgets_of_their_own(engine, settings):
    app = create_app(settings.replace(**limited(f"{QUERY_COST}/minute")), engine=engine)
    async with app.router.lifespan_context(app):
        for address in ("10.0.0.1", "10.0.0.2"):
            transport = httpx.ASGITransport(app=app, client=(address, 1234))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await client.post("/graphql", json={"query": QUERY})).status_code == 200
                assert (await client.post("/graphql", json={"query": QUERY})).status_code == 429


async def test_by_address_an_api_key_header_changes_nothing(app_client):
    async with app_client(**limited(f"{QUERY_COST}/minute")) as client:
        one = await client.post("/graphql", json={"query": QUERY}, headers={"X-API-Key": "a"})
        two = await client.post("/graphql", json={"query": QUERY}, headers={"X-API-Key": "b"})
    assert (one.status_code, two.status_code) == (200, 429)


async def test_by_header_each_key_has_its_budget_and_keyless_requests_share_the_address(
    app_client,
):
    settings = limited(f"{QUERY_COST}/minute", rate_limit_key="header:X-API-Key")
    async with app_client(**settings) as client:

        async def status(headers: dict[str, str]) -> int:
            response = await client.post("/graphql", json={"query": QUERY}, headers=headers)
            return response.status_code

        assert await status({"X-API-Key": "alice"}) == 200
        assert await status({"x-api-key": "alice"}) == 429  # header names ignore case
        assert await status({"X-API-Key": "bob"}) == 200
        assert await status({}) == 200  # the address's budget
        assert await status({"X-API-Key": ""}) == 429  # an empty key is no key
        assert await status({"X-Other": "alice"}) == 429


# ---- a storage that fails ----


async def test_requests_are_served_unlimited_while_the_storage_does_not_answer(app_client):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    settings = limited("1/minute", rate_limit_storage=f"redis://127.0.0.1:{port}")
    async with app_client(**settings) as client:
        for _ in range(2):
            response = await client.post("/graphql", json={"query": RATE_LIMIT})
            assert response.status_code == 200
            assert without_cost(response.json()) == {"data": {"rateLimit": None}}
            assert "x-ratelimit-limit" not in response.headers
        registry = client.app.state.metrics.registry  # type: ignore[attr-defined]
        # Three failed calls: the first request's document was new, so its client's budget was
        # read before parsing it (app/http/admission.py), then charged; the second's is cached.
        assert registry.get_sample_value("batchery_rate_limit_storage_errors_total") == 3.0
