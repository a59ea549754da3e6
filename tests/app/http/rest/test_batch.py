"""POST /api/batch: sub-requests routed in-process, answered in order, 200 / 207 / 400."""

from __future__ import annotations

import pytest

from tests import dbstate


def op(method: str, path: str, body: object = None, **headers: str) -> dict[str, object]:
    operation: dict[str, object] = {"method": method, "path": path}
    if body is not None:
        operation["body"] = body
    if headers:
        operation["headers"] = {k.replace("_", "-"): v for k, v in headers.items()}
    return operation


async def test_mixed_success_is_207_with_statuses_in_order(client, engine):
    operations = [
        op("POST", "/api/bakeries", {"name": "Batched", "region": "CENTRAL", "externalId": "B-1"}),
        op("GET", "/api/bakeries/1"),
        op("POST", "/api/bakeries", {"name": ""}),
        op("GET", "/api/unknown"),
        op("DELETE", "/api/bakeries/999"),
        op("POST", "/api/bakeries/bulk", {"operation": "DELETE", "records": [{"id": "6"}]}),
        op("POST", "/api/batch", {"operations": []}),
        op("GET", "/graphql?query={products{id}}"),
    ]
    response = await client.post("/api/batch", json={"operations": operations})
    assert response.status_code == 207
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 200, 422, 404, 404, 200, 404, 404]
    created = results[0]
    assert created["body"]["name"] == "Batched"
    assert created["headers"] == {"location": f"/api/bakeries/{created['body']['id']}"}
    assert results[1]["body"]["id"] == "1"
    assert results[2]["body"]["error"]["code"] == "INVALID_VALUE"
    assert results[3]["body"]["error"]["code"] == "NOT_FOUND"
    assert "cannot contain /api/batch" in results[6]["body"]["error"]["message"]
    # The writes of the successful operations happened; the failed ones wrote nothing.
    assert (await dbstate.bakery_by_key(engine, "B-1")).name == "Batched"
    assert await dbstate.bakery(engine, 6) is None
    assert await dbstate.bakeries_named(engine, "") == []


async def test_all_succeeded_is_200_and_operations_see_earlier_writes(client, engine):
    operations = [
        op("POST", "/api/bakeries", {"name": "Seq", "region": "CENTRAL", "externalId": "SEQ"}),
        op("GET", "/api/bakeries?region=CENTRAL&first=100"),
        op("PATCH", "/api/bakeries/2", {"name": "Patched in batch"}),
    ]
    response = await client.post("/api/batch", json={"operations": operations})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 200, 200]
    assert "SEQ" in [b["externalId"] for b in results[1]["body"]["data"]]
    assert (await dbstate.bakery(engine, 2)).name == "Patched in batch"


async def test_a_bulk_operation_with_failed_records_makes_the_batch_207(client):
    operations = [op("POST", "/api/bakeries/delete-many", {"ids": ["1", "404"]})]
    response = await client.post("/api/batch", json={"operations": operations})
    assert response.status_code == 207
    assert response.json()["results"][0]["status"] == 207


async def test_wrong_method_is_405_in_its_own_result(client):
    response = await client.post("/api/batch", json={"operations": [op("PUT", "/api/bakeries")]})
    result = response.json()["results"][0]
    assert result["status"] == 405
    assert set(result["headers"]["allow"].split(", ")) >= {"GET", "POST"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ([], "operations"),
        ({"operations": []}, "non-empty"),
        ({"operations": [op("GET", "/api/bakeries")], "more": 1}, "operations"),
        ({"operations": [{"path": "/api/bakeries"}]}, "operations[0].method"),
        ({"operations": [{"method": "GET", "path": "api/bakeries"}]}, "operations[0].path"),
        ({"operations": [{"method": "BREW", "path": "/api/bakeries"}]}, "operations[0].method"),
        ({"operations": [op("GET", "/api/bakeries"), 5]}, "operations[1]"),
        (
            {"operations": [{"method": "GET", "path": "/api/x", "headers": {"a": 1}}]},
            "operations[0].headers",
        ),
        ({"operations": [{"method": "GET", "path": "/x", "query": "?"}]}, "'query'"),
    ],
)
async def test_a_malformed_batch_is_400_and_runs_nothing(client, engine, body, fragment):
    before = await dbstate.snapshot(engine)
    response = await client.post("/api/batch", json=body)
    assert response.status_code == 400
    assert fragment in response.json()["error"]["message"]
    assert await dbstate.snapshot(engine) == before


async def test_a_malformed_batch_runs_none_of_its_valid_operations(client, engine):
    create = op("POST", "/api/bakeries", {"name": "Never", "region": "CENTRAL"})
    response = await client.post("/api/batch", json={"operations": [create, {"method": "GET"}]})
    assert response.status_code == 400
    assert await dbstate.bakeries_named(engine, "Never") == []


async def test_more_than_100_operations_are_refused(client):
    operations = [op("GET", "/api/bakeries/1")] * 101
    response = await client.post("/api/batch", json={"operations": operations})
    assert response.status_code == 413
    assert response.json()["error"]["message"] == (
        "a batch holds at most 100 operations, got 101; split it into several batches "
        "(limit set by BATCHERY_REST_BATCH_MAX_OPERATIONS)"
    )
    response = await client.post("/api/batch", json={"operations": operations[:100]})
    assert response.status_code == 200


async def test_a_limit_of_one_reads_as_one_operation(app_client):
    async with app_client(rest_batch_max_operations=1) as client:
        operations = [op("GET", "/api/bakeries/1")] * 2
        response = await client.post("/api/batch", json={"operations": operations})
    assert response.json()["error"]["message"].startswith(
        "a batch holds at most 1 operation, got 2;"
    )


async def test_sub_requests_carry_their_own_idempotency_keys(client, engine):
    create = op(
        "POST",
        "/api/bakeries",
        {"name": "Once", "region": "CENTRAL"},
        Idempotency_Key="sub-1",
    )
    first = await client.post("/api/batch", json={"operations": [create, create]})
    assert [r["status"] for r in first.json()["results"]] == [201, 201]
    assert first.json()["results"][1]["headers"]["idempotent-replayed"] == "true"
    assert await dbstate.bakeries_named(engine, "Once") == ["Once"]


async def test_the_whole_batch_can_be_idempotent(client, engine):
    body = {"operations": [op("POST", "/api/bakeries", {"name": "Whole", "region": "CENTRAL"})]}
    headers = {"Idempotency-Key": "batch-1"}
    first = await client.post("/api/batch", json=body, headers=headers)
    second = await client.post("/api/batch", json=body, headers=headers)
    assert second.json() == first.json()
    assert await dbstate.bakeries_named(engine, "Whole") == ["Whole"]
    other = await client.post(
        "/api/batch", json={"operations": [op("GET", "/api/x")]}, headers=headers
    )
    assert other.status_code == 422
