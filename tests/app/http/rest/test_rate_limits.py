"""Rate limits on the REST façade: 10 points per call (its database round trip) and one per record
it reads or writes, `/api/batch` the sum of its calls, paid before anything runs; over budget 429,
nothing written."""

from __future__ import annotations

import pytest

from app.db.statements import count_statements
from app.http.rest.costs import call_cost, sub_call_cost
from tests import dbstate


def limited(points: int) -> dict[str, object]:
    return {"rate_limit_enabled": True, "rate_limit": f"{points}/minute"}


def used(response) -> int:
    return int(response.headers["x-ratelimit-used"])


def records(n: int, prefix: str = "R") -> list[dict[str, object]]:
    return [
        {"externalId": f"{prefix}-{i}", "data": {"name": f"{prefix} {i}", "region": "CENTRAL"}}
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "cost"),
    [
        ("GET", "/api/bakeries/1", {}, None, 11),
        ("PATCH", "/api/cake-orders/3", {}, {"writtenPhrase": "x"}, 11),
        ("POST", "/api/bakeries", {}, {"name": "x"}, 11),
        ("DELETE", "/api/bakeries/4", {}, None, 11),
        ("GET", "/api/bakeries", {}, None, 110),
        ("GET", "/api/bakeries", {"first": "7"}, None, 17),
        ("GET", "/api/bakeries", {"first": "5000"}, None, 1010),
        ("GET", "/api/bakeries", {"first": "0"}, None, 11),
        ("GET", "/api/bakeries", {"first": "lots"}, None, 11),
        ("POST", "/api/cake-orders/bulk", {}, {"records": [{}, {}, {}]}, 13),
        ("POST", "/api/cake-orders/bulk", {}, {"records": []}, 11),
        ("POST", "/api/cake-orders/bulk", {}, ["not", "an", "object"], 11),
        ("POST", "/api/bakeries/delete-many", {}, {"ids": [1, 2]}, 12),
    ],
)
def test_a_call_costs_its_round_trip_and_a_point_per_record(method, path, query, body, cost):
    assert call_cost(method, path, query, body, 1000) == cost


def test_a_batched_call_is_priced_with_its_query_string():
    assert sub_call_cost("GET", "/api/cake-orders?first=12&bakeryId=1", None, 1000) == 22


async def test_single_calls_and_pages_are_charged_before_they_run(app_client):
    async with app_client(**limited(50)) as client:
        one = await client.get("/api/bakeries/1")
        assert (one.status_code, used(one)) == (200, 11)
        page = await client.get("/api/bakeries", params={"first": 4})
        assert (page.status_code, used(page)) == (200, 25)
        created = await client.post("/api/bakeries", json={"name": "New", "region": "CENTRAL"})
        assert (created.status_code, used(created)) == (201, 36)
        assert created.headers["x-ratelimit-remaining"] == "14"
        refused = await client.get("/api/bakeries", params={"first": 5})
        assert refused.status_code == 429


async def test_a_bulk_call_is_charged_per_record_and_refused_whole_over_budget(app_client, engine):
    async with app_client(**limited(25)) as client:
        first = await client.post(
            "/api/bakeries/bulk", json={"operation": "UPSERT", "records": records(3, "A")}
        )
        assert (first.status_code, used(first)) == (200, 13)

        before = await dbstate.snapshot(engine)
        with count_statements(engine) as log:
            refused = await client.post(
                "/api/bakeries/bulk", json={"operation": "UPSERT", "records": records(3, "B")}
            )
        assert refused.status_code == 429
        assert log.count == 0
        assert await dbstate.snapshot(engine) == before
        error = refused.json()["error"]
        assert error["code"] == "THROTTLED"
        assert (
            "this request costs 13 points and 12 of this client's 25 points per minute"
            in (error["message"])
        )
        assert "BATCHERY_RATE_LIMIT" in error["message"]
        assert int(refused.headers["retry-after"]) >= 1
        assert (refused.headers["x-ratelimit-remaining"], used(refused)) == ("12", 13)

        # Two records fit in what is left.
        fits = await client.post(
            "/api/bakeries/bulk", json={"operation": "UPSERT", "records": records(2, "B")}
        )
        assert (fits.status_code, used(fits)) == (200, 25)


async def test_delete_many_is_charged_per_id(app_client, engine):
    async with app_client(**limited(13)) as client:
        refused = await client.post("/api/bakeries/delete-many", json={"ids": [1, 2, 3, 4]})
        assert refused.status_code == 429
        assert await dbstate.bakery(engine, 1) is not None
        deleted = await client.post("/api/bakeries/delete-many", json={"ids": [5, 6]})
        assert (deleted.status_code, used(deleted)) == (200, 12)
        assert await dbstate.bakery(engine, 5) is None


async def test_a_rest_batch_is_charged_the_sum_of_its_calls_once(app_client, engine):
    operations = [
        {"method": "POST", "path": "/api/bakeries", "body": {"name": "In", "region": "CENTRAL"}},
        {"method": "GET", "path": "/api/bakeries?first=2"},
        {
            "method": "POST",
            "path": "/api/bakeries/bulk",
            "body": {"operation": "UPSERT", "records": records(3, "C")},
        },
    ]
    cost = 11 + 12 + 13
    async with app_client(**limited(cost + 20)) as client:
        response = await client.post("/api/batch", json={"operations": operations})
        assert response.status_code == 200, response.text
        assert used(response) == cost
        # The calls inside were paid for by the batch: they carry no headers of their own.
        for result in response.json()["results"]:
            assert not any(name.startswith("x-ratelimit") for name in result.get("headers", {}))

        # The same batch again does not fit in the 20 left: none of its calls runs.
        before = await dbstate.snapshot(engine)
        with count_statements(engine) as log:
            refused = await client.post("/api/batch", json={"operations": operations})
        assert (refused.status_code, log.count) == (429, 0)
        assert await dbstate.snapshot(engine) == before
        registry = client.app.state.metrics.registry
        labels = {"api": "rest"}
        assert registry.get_sample_value("batchery_throttled_requests_total", labels) == 1.0
        assert registry.get_sample_value("batchery_throttled_operations_total", labels) == 3.0
