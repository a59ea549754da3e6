"""The audit trail names the caller and the HTTP request of every write that ran, through GraphQL
(single and bulk mutations, uploads) and REST (single, bulk, and inside `POST /api/batch`), and
only callers with the `admin` scope can read it."""

from __future__ import annotations

from sqlalchemy import select

from app.db import keys
from app.db.audit import audit_table
from tests.app.http.forms import body, field, file, headers, upload_operation
from tests.images import png

TRAIL = "{ auditTrail(first: 50) { caller requestId transport action outcome detail } }"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def trail(client, admin_key: str) -> list[dict]:
    response = await client.post("/graphql", json={"query": TRAIL}, headers=bearer(admin_key))
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["data"]["auditTrail"]))  # oldest first


async def test_the_audit_trail_names_the_caller_and_request_of_each_bulk_write(client, engine):
    bulk = await keys.create_key(engine, "loader", ["read", "write", "bulk"])
    admin = await keys.create_key(engine, "auditor", ["read", "admin"])
    key = bulk.key
    # An order none of the deletes below removes (deleting a bakery deletes its orders).
    found = await client.post(
        "/graphql", json={"query": "{ bakery(id: 6) { orders(limitTo: 1) { id } } }"}
    )
    order_id = found.json()["data"]["bakery"]["orders"][0]["id"]
    graphql = await client.post(
        "/graphql",
        json=[
            {"query": 'mutation { deleteManyBakeries(ids: ["1"]) { succeeded } }'},
            {"query": "{ bakery(id: 2) { id } }"},  # a read: not audited
            {
                "query": "mutation { batchBakeries(request: {operation: CREATE, records: "
                '[{data: {name: "Audited", region: CENTRAL}}]}) { succeeded } }'
            },
        ],
        headers=bearer(key),
    )
    rest = await client.post(
        "/api/bakeries/bulk",
        json={"operation": "DELETE", "records": [{"id": "2"}]},
        headers=bearer(key),
    )
    batch = await client.post(
        "/api/batch",
        json={
            "operations": [
                {"method": "GET", "path": "/api/bakeries/3"},
                {"method": "DELETE", "path": "/api/bakeries/3"},
            ]
        },
        headers=bearer(key),
    )
    anonymous = await client.post(
        "/graphql",
        json={
            "query": "mutation($id: ID!) { addMoney(orderId: $id, dollarsToAdd: 1) { id } }",
            "variables": {"id": order_id},
        },
    )
    upload = await client.post(
        "/graphql",
        content=body(
            field("operations", upload_operation(order_id)),
            field("map", {"0": ["variables.file"]}),
            file("0", png(b"audited"), "cake.png", "image/png"),
        ),
        headers=headers(**bearer(key)),
    )
    for response in (graphql, rest, batch, anonymous, upload):
        assert response.status_code == 200, response.text

    caller = f"key:{bulk.info.id}"
    events = [
        (e["caller"], e["requestId"], e["transport"], e["action"], e["outcome"])
        for e in await trail(client, admin.key)
    ]
    assert events == [
        # A batch's mutations run concurrently: their entries are in the order sent.
        (caller, graphql.headers["x-request-id"], "graphql", "deleteManyBakeries", "ok"),
        (caller, graphql.headers["x-request-id"], "graphql", "batchBakeries", "ok"),
        (caller, rest.headers["x-request-id"], "rest", "POST /api/bakeries/bulk", "ok"),
        (caller, batch.headers["x-request-id"], "rest", "DELETE /api/bakeries/3", "ok"),
        ("anonymous", anonymous.headers["x-request-id"], "graphql", "addMoney", "ok"),
        (caller, upload.headers["x-request-id"], "graphql", "uploadOrderPhoto", "ok"),
    ]
    assert len({graphql.headers["x-request-id"], rest.headers["x-request-id"]}) == 2


async def test_a_write_that_failed_is_audited_with_its_codes_and_a_refused_one_is_not(
    client, engine
):
    writer = await keys.create_key(engine, "writer", ["read", "write"])
    failed = await client.post(
        "/graphql",
        json={"query": 'mutation { addMoney(orderId: "999", dollarsToAdd: 1) { id } }'},
        headers=bearer(writer.key),
    )
    refused = await client.post(
        "/graphql",
        json={"query": 'mutation { deleteManyBakeries(ids: ["1"]) { succeeded } }'},
        headers=bearer(writer.key),
    )
    malformed = await client.post(
        "/api/bakeries/bulk",
        content=b"{not json",
        headers={**bearer(writer.key), "Content-Type": "application/json"},
    )
    assert failed.json()["errors"] and refused.status_code == 403
    assert malformed.status_code == 403  # no `bulk`: refused before the body is even read
    async with engine.connect() as conn:
        rows = (await conn.execute(select(audit_table))).all()
    assert [(row.caller, row.action, row.outcome, row.detail) for row in rows] == [
        (f"key:{writer.info.id}", "addMoney", "error", "NOT_FOUND")
    ]


async def test_reading_the_audit_trail_needs_admin(client, engine):
    reader = await keys.create_key(engine, "reader", ["read", "write", "bulk"])
    response = await client.post("/graphql", json={"query": TRAIL}, headers=bearer(reader.key))
    assert response.status_code == 403
    [error] = response.json()["errors"]
    assert error["extensions"]["missingScopes"] == ["admin"]
    assert error["extensions"]["fields"] == ["Query.auditTrail"]


async def test_every_response_has_its_own_request_id(client):
    first = await client.get("/healthz")
    second = await client.get("/healthz", headers={"X-Request-Id": "chosen-by-client"})
    ids = {first.headers["x-request-id"], second.headers["x-request-id"]}
    assert len(ids) == 2 and "chosen-by-client" not in ids


async def test_a_rest_write_refused_before_the_engine_is_not_audited(client, engine):
    loader = await keys.create_key(engine, "loader", ["read", "write", "bulk"])
    json_headers = {**bearer(loader.key), "Content-Type": "application/json"}
    malformed = await client.post("/api/bakeries/bulk", content=b"{not json", headers=json_headers)
    unknown = await client.delete("/api/bakeries/999", headers=bearer(loader.key))
    assert malformed.status_code == 400 and unknown.status_code == 404
    async with engine.connect() as conn:
        rows = (await conn.execute(select(audit_table))).all()
    assert [(row.action, row.outcome, row.detail) for row in rows] == [
        ("DELETE /api/bakeries/999", "error", "404")
    ]
