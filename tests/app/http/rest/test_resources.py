"""The REST façade: the same engine and rules as GraphQL, HTTP statuses a client can act on."""

from __future__ import annotations

from typing import Any

import pytest

from app.db.models import Region
from tests import dbstate


def bakeries(n: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {"data": {"name": f"{prefix} {i}", "region": "CENTRAL", "externalId": f"{prefix}-{i}"}}
        for i in range(n)
    ]


async def test_bulk_create_all_valid_is_200(client, engine):
    response = await client.post(
        "/api/bakeries/bulk",
        json={
            "operation": "CREATE",
            "records": bakeries(3, "R"),
            "options": {"returnRecords": True},
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["success"], body["total"], body["succeeded"], body["failed"]) == (True, 3, 3, 0)
    first = body["results"][0]
    assert first["data"] == {
        "id": first["id"],
        "externalId": "R-0",
        "name": "R 0",
        "region": "CENTRAL",
    }
    assert body["meta"]["batchId"] and body["meta"]["atomic"] is False
    assert (await dbstate.bakery_by_key(engine, "R-2")).id == int(body["results"][2]["id"])


async def test_bulk_atomic_failure_is_207_and_writes_nothing(client, engine):
    before = await dbstate.snapshot(engine)
    records = bakeries(10, "RA")
    records[9]["data"]["region"] = "MOON"
    response = await client.post(
        "/api/bakeries/bulk",
        json={"operation": "CREATE", "records": records, "options": {"atomic": True}},
    )
    assert response.status_code == 207
    results = response.json()["results"]
    assert results[9]["errors"][0]["code"] == "INVALID_VALUE"
    assert {r["errors"][0]["code"] for r in results[:9]} == {"ALL_OR_NONE_ROLLED_BACK"}
    assert await dbstate.snapshot(engine) == before


async def test_bulk_upsert_of_cake_orders(client, engine):
    response = await client.post(
        "/api/cake-orders/bulk",
        json={
            "operation": "UPSERT",
            "records": [
                {"externalId": "ORD-000001", "data": {"currentTotal": 999}},
                {"externalId": "REST-NEW", "data": {"bakeryId": 2, "writtenPhrase": "Hi"}},
            ],
        },
    )
    assert response.status_code == 200
    assert [r["created"] for r in response.json()["results"]] == [False, True]
    assert (await dbstate.order_by_key(engine, "ORD-000001")).current_total == 999
    assert (await dbstate.order_by_key(engine, "REST-NEW")).bakery_id == 2


async def test_too_many_records_is_413_and_writes_nothing(client, engine):
    before = await dbstate.snapshot(engine)
    response = await client.post(
        "/api/bakeries/bulk", json={"operation": "CREATE", "records": bakeries(201, "X")}
    )
    assert response.status_code == 413
    body = response.json()
    assert body["error"]["code"] == "BATCH_TOO_LARGE"
    assert (body["results"], body["total"]) == ([], 201)
    assert await dbstate.snapshot(engine) == before


async def test_disabled_bulk_is_403_but_single_records_still_work(app_client, engine):
    async with app_client(bulk_enabled=False) as client:
        refused = await client.post(
            "/api/bakeries/bulk", json={"operation": "CREATE", "records": bakeries(1, "D")}
        )
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "BULK_DISABLED"
        created = await client.post("/api/bakeries", json={"name": "One", "region": "CENTRAL"})
        assert created.status_code == 201
    assert await dbstate.bakery_by_key(engine, "D-0") is None


async def test_left_out_options_take_the_server_defaults_one_by_one(app_client, engine):
    async with app_client(bulk_default_atomic=True, bulk_default_return_records=True) as client:
        records = [*bakeries(2, "OD"), {"data": {"name": "no region"}}]
        response = await client.post(
            "/api/bakeries/bulk",
            json={"operation": "CREATE", "records": records, "options": {"validateOnly": False}},
        )
        body = response.json()
        assert body["meta"]["atomic"] is True and body["succeeded"] == 0
        response = await client.post(
            "/api/bakeries/bulk",
            json={"operation": "CREATE", "records": records, "options": {"atomic": False}},
        )
        body = response.json()
        assert (body["meta"]["atomic"], body["succeeded"]) == (False, 2)
        assert body["results"][0]["data"]["name"] == "OD 0"  # returnRecords from the server
    assert (await dbstate.bakery_by_key(engine, "OD-1")).name == "OD 1"


async def test_delete_many(client, engine):
    response = await client.post(
        "/api/bakeries/delete-many", json={"ids": [1, "2", "77"], "options": {"atomic": False}}
    )
    assert response.status_code == 207
    assert [r["success"] for r in response.json()["results"]] == [True, True, False]
    assert await dbstate.bakery(engine, 1) is None and await dbstate.bakery(engine, 2) is None


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ([], None, "must be a JSON object"),
        ({"operation": "MERGE", "records": []}, "operation", "CREATE, UPDATE, UPSERT, DELETE"),
        ({"operation": "CREATE", "records": {}}, "records", "list"),
        ({"operation": "CREATE", "records": [], "extra": 1}, "extra", "unknown key"),
        ({"operation": "CREATE", "records": [3]}, None, "records[0] must be a JSON object"),
        ({"operation": "CREATE", "records": [{"data": []}]}, "records[0].data", "object"),
        (
            {"operation": "CREATE", "records": [], "options": {"atomic": "yes"}},
            "options.atomic",
            "true",
        ),
        (
            {"operation": "CREATE", "records": [], "options": {"fast": True}},
            "options.fast",
            "unknown",
        ),
    ],
)
async def test_malformed_bulk_bodies_are_400_with_the_path(client, engine, body, field, fragment):
    before = await dbstate.snapshot(engine)
    response = await client.post("/api/bakeries/bulk", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "BAD_REQUEST"
    assert error.get("field") == field
    assert fragment in error["message"]
    assert await dbstate.snapshot(engine) == before


async def test_a_body_that_is_not_json_is_400_and_the_wrong_type_415(client):
    response = await client.post(
        "/api/bakeries/bulk", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]
    response = await client.post("/api/bakeries/bulk", content=b"operation=CREATE")
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]["message"]


async def test_a_body_over_the_size_limit_is_413(app_client):
    async with app_client(max_body_bytes=100) as client:
        response = await client.post(
            "/api/bakeries/bulk", json={"operation": "CREATE", "records": bakeries(5, "L")}
        )
    assert response.status_code == 413


async def test_list_filters_and_pages(client):
    response = await client.get("/api/bakeries", params={"region": "CENTRAL"})
    assert response.status_code == 200
    items = response.json()["data"]
    assert [b["region"] for b in items] == ["CENTRAL"] * len(items) and items
    page = (await client.get("/api/bakeries", params={"first": 2, "after": 1})).json()["data"]
    assert [b["id"] for b in page] == ["2", "3"]
    orders = (await client.get("/api/cake-orders", params={"bakeryId": 2})).json()["data"]
    assert len(orders) == 5 and {o["bakeryId"] for o in orders} == {"2"}
    assert orders[0]["createdAt"].endswith("+00:00")
    bad = await client.get("/api/bakeries", params={"region": "MARS"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "region"
    bad = await client.get("/api/bakeries", params={"first": "-1"})
    assert bad.status_code == 400
    for params in ({"after": "99999999999999999999"}, {"bakeryId": "0"}, {"bakeryId": "x"}):
        bad = await client.get("/api/cake-orders", params=params)
        assert bad.status_code == 400, params


async def test_single_record_routes(client, engine):
    created = await client.post(
        "/api/bakeries", json={"name": "Solo", "region": "NORTH_EAST", "externalId": "SOLO"}
    )
    assert created.status_code == 201
    pk = created.json()["id"]
    assert created.headers["location"] == f"/api/bakeries/{pk}"
    assert (await client.get(f"/api/bakeries/{pk}")).json()["name"] == "Solo"

    patched = await client.patch(f"/api/bakeries/{pk}", json={"region": "SOUTH_WEST"})
    assert patched.status_code == 200
    assert patched.json()["region"] == "SOUTH_WEST"
    assert (await dbstate.bakery(engine, int(pk))).region is Region.SOUTH_WEST

    deleted = await client.delete(f"/api/bakeries/{pk}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert await dbstate.bakery(engine, int(pk)) is None
    assert (await client.get(f"/api/bakeries/{pk}")).status_code == 404
    assert (await client.delete(f"/api/bakeries/{pk}")).status_code == 404
    assert (await client.patch(f"/api/bakeries/{pk}", json={"name": "x"})).status_code == 404


async def test_single_record_refusals(client, engine):
    before = await dbstate.snapshot(engine)
    invalid = await client.post("/api/bakeries", json={"name": ""})
    assert invalid.status_code == 422
    assert [e["code"] for e in invalid.json()["errors"]] == ["INVALID_VALUE", "REQUIRED"]
    taken = await client.post(
        "/api/bakeries", json={"name": "Copy", "region": "CENTRAL", "externalId": "BKR-0001"}
    )
    assert taken.status_code == 409
    assert taken.json()["error"]["field"] == "data.externalId"
    no_bakery = await client.post("/api/cake-orders", json={"bakeryId": 99, "writtenPhrase": "x"})
    assert no_bakery.status_code == 422
    assert no_bakery.json()["error"]["code"] == "REFERENCE_NOT_FOUND"
    assert (await client.get("/api/bakeries/abc")).status_code == 400
    assert await dbstate.snapshot(engine) == before


async def test_unknown_routes_and_methods_answer_json(client):
    missing = await client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"
    wrong = await client.put("/api/bakeries/1", json={})
    assert wrong.status_code == 405
    assert set(wrong.headers["allow"].split(", ")) >= {"GET", "PATCH", "DELETE"}


# ---- Idempotency-Key ----


async def test_same_key_twice_writes_once(client, engine):
    body = {"operation": "CREATE", "records": bakeries(2, "IR")}
    headers = {"Idempotency-Key": "rest-1"}
    first = await client.post("/api/bakeries/bulk", json=body, headers=headers)
    second = await client.post("/api/bakeries/bulk", json=body, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await dbstate.count(engine, "bakeries") == 6 + 2


async def test_same_key_other_body_is_422(client, engine):
    headers = {"Idempotency-Key": "rest-2"}
    await client.post("/api/bakeries", json={"name": "A", "region": "CENTRAL"}, headers=headers)
    before = await dbstate.snapshot(engine)
    other = await client.post(
        "/api/bakeries", json={"name": "B", "region": "CENTRAL"}, headers=headers
    )
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await dbstate.snapshot(engine) == before


async def test_retry_while_the_first_runs_is_409(client, engine, monkeypatch):
    from app.bulk import BulkEngine

    body = {"ids": ["3"]}
    headers = {"Idempotency-Key": "rest-3"}
    retries: list[Any] = []
    original = BulkEngine.run

    async def retry_meanwhile(self: BulkEngine, *args: Any) -> Any:
        if not retries:
            retries.append(
                await client.post("/api/bakeries/delete-many", json=body, headers=headers)
            )
        return await original(self, *args)

    monkeypatch.setattr(BulkEngine, "run", retry_meanwhile)
    first = await client.post("/api/bakeries/delete-many", json=body, headers=headers)
    assert first.status_code == 200
    (retry,) = retries
    assert retry.status_code == 409
    assert retry.json()["error"]["code"] == "IDEMPOTENCY_KEY_IN_PROGRESS"
    assert await dbstate.bakery(engine, 3) is None
    replay = await client.post("/api/bakeries/delete-many", json=body, headers=headers)
    assert (replay.status_code, replay.json()) == (200, first.json())


async def test_an_internal_fault_is_500_and_frees_the_idempotency_key(client, engine):
    from sqlalchemy import text

    body = {"operation": "CREATE", "records": [{"data": {"bakeryId": 1, "writtenPhrase": "x"}}]}
    headers = {"Idempotency-Key": "rest-fault"}
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE cake_orders RENAME TO cake_orders_away"))
    try:
        fault = await client.post("/api/cake-orders/bulk", json=body, headers=headers)
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE cake_orders_away RENAME TO cake_orders"))
    assert fault.status_code == 500
    error = fault.json()["error"]
    assert error["code"] == "INTERNAL" and fault.json()["meta"]["batchId"] in error["message"]
    # Nothing was written, so the retry runs (it is not answered with the fault).
    retry = await client.post("/api/cake-orders/bulk", json=body, headers=headers)
    assert retry.status_code == 200 and "idempotent-replayed" not in retry.headers


async def test_action_paths_are_never_read_as_ids(client):
    response = await client.get("/api/bakeries/bulk")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "use POST" in response.json()["error"]["message"]
    response = await client.delete("/api/bakeries/delete-many")
    assert response.status_code == 405
    assert (await client.get("/api/bakeries/abc")).status_code == 400
    assert (await client.get("/api/bakeries/1")).status_code == 200


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    ("path", "raw", "label"),
    [
        ("/api/bakeries/-1", "-1", "bakery"),
        ("/api/bakeries/0", "0", "bakery"),
        ("/api/bakeries/abc", "abc", "bakery"),
        ("/api/cake-orders/1.5", "1.5", "cake order"),
        ("/api/bakeries/+1", "+1", "bakery"),
        ("/api/bakeries/%201", " 1", "bakery"),
        ("/api/bakeries/1_0", "1_0", "bakery"),
        ("/api/bakeries/%E0%A5%A7", "\u0967", "bakery"),
    ],
)
async def test_a_malformed_id_in_the_path_is_400_invalid_id_not_a_missing_route(
    client, engine, method, path, raw, label
):
    before = await dbstate.snapshot(engine)
    response = await client.request(method, path, json={"name": "x"} if method == "PATCH" else None)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "BAD_REQUEST",
        "message": f"invalid id {raw!r}: a {label} id is a whole number from 1 to 2147483647",
        "field": "id",
    }
    assert await dbstate.snapshot(engine) == before


async def test_a_well_formed_id_no_row_has_is_404(client):
    for path in ("/api/bakeries/999999", "/api/bakeries/99999999999"):
        response = await client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "NOT_FOUND"
    assert (await client.get("/api/bakeries/1/photos")).json()["error"]["message"] == (
        "no API route at GET /api/bakeries/1/photos"
    )


async def test_bakeries_after_takes_an_id_or_a_graphql_cursor_for_the_same_page(client):
    query = "{ bakeriesConnection(first: 2) { pageInfo { endCursor } } }"
    graphql = await client.post("/graphql", json={"query": query})
    cursor = graphql.json()["data"]["bakeriesConnection"]["pageInfo"]["endCursor"]
    by_cursor = await client.get("/api/bakeries", params={"first": 2, "after": cursor})
    by_id = await client.get("/api/bakeries", params={"first": 2, "after": 2})
    assert by_cursor.status_code == by_id.status_code == 200
    assert [b["id"] for b in by_cursor.json()["data"]] == ["3", "4"]
    assert by_cursor.json() == by_id.json()


@pytest.mark.parametrize("after", ["nope", "djE6b3JkZXI6MDox", "-1"])
async def test_a_bakeries_after_that_is_neither_id_nor_cursor_is_400_naming_after(client, after):
    response = await client.get("/api/bakeries", params={"after": after})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "after" and "after must be" in error["message"]


async def test_cake_orders_after_is_an_id_only(client):
    # Cake orders page by id here; Bakery.ordersConnection pages newest first, another order.
    response = await client.get("/api/cake-orders", params={"after": "djE6b3JkZXI6MDox"})
    assert response.status_code == 400 and response.json()["error"]["field"] == "after"
