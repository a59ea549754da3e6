"""`/api/keys`: key management on the REST façade, for `admin` callers only, inside `/api/batch`
too (where `bulk` must not stand in for `admin`). Checked against the `api_keys` table."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.db import keys
from app.db.audit import newest
from tests.app.http.test_access import bearer


async def key_rows(engine) -> int:
    async with engine.connect() as conn:
        statement = select(func.count()).select_from(keys.keys_table)
        return int((await conn.execute(statement)).scalar_one())


async def test_an_admin_creates_lists_and_revokes_a_key_and_each_holds_at_once(client, engine):
    admin = await keys.create_key(engine, "admin", ["read", "admin"])
    created = await client.post(
        "/api/keys",
        json={"name": "etl", "scopes": ["read", "bulk"], "expiresInDays": 7},
        headers=bearer(admin.key),
    )
    assert created.status_code == 201, created.text
    new_key, record = created.json()["key"], created.json()["apiKey"]
    assert record["scopes"] == ["read", "bulk"] and record["expiresAt"]
    assert (await client.get("/api/bakeries/1", headers=bearer(new_key))).status_code == 200
    listed = await client.get("/api/keys", headers=bearer(admin.key))
    assert [k["name"] for k in listed.json()["data"]] == ["admin", "etl"]
    assert new_key not in listed.text
    revoked = await client.post(f"/api/keys/{record['id']}/revoke", headers=bearer(admin.key))
    assert revoked.status_code == 200 and revoked.json()["revokedAt"]
    assert (await client.get("/api/bakeries/1", headers=bearer(new_key))).status_code == 401
    missing = await client.post("/api/keys/ffffffffffff/revoke", headers=bearer(admin.key))
    assert missing.status_code == 404
    actions = [(r.entry.action, r.entry.detail) for r in reversed(await newest(engine, 10))]
    assert actions == [
        ("POST /api/keys", "201"),
        (f"POST /api/keys/{record['id']}/revoke", "200"),
        ("POST /api/keys/ffffffffffff/revoke", "404"),
    ]


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("GET", "/api/keys", None),
        ("POST", "/api/keys", {"name": "sneaky", "scopes": ["admin"]}),
        ("POST", "/api/keys/000000000000/revoke", None),
    ],
)
async def test_without_admin_every_key_route_is_forbidden(client, engine, method, path, payload):
    everything_else = await keys.create_key(engine, "loader", ["read", "write", "bulk"])
    before = await key_rows(engine)
    response = await client.request(method, path, json=payload, headers=bearer(everything_else.key))
    assert response.status_code == 403
    assert "'admin'" in response.json()["error"]["message"]
    assert await key_rows(engine) == before


async def test_key_routes_are_not_reachable_inside_a_rest_batch(client, engine):
    # Inside /api/batch a write needs `bulk`: reaching /api/keys there would let `bulk` make keys.
    loader = await keys.create_key(engine, "loader", ["read", "write", "bulk"])
    before = await key_rows(engine)
    response = await client.post(
        "/api/batch",
        json={
            "operations": [
                {"method": "POST", "path": "/api/keys", "body": {"name": "x", "scopes": ["admin"]}}
            ]
        },
        headers=bearer(loader.key),
    )
    [result] = response.json()["results"]
    assert result["status"] == 404
    assert await key_rows(engine) == before


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([], None),
        ({"name": 5, "scopes": ["read"]}, "name"),
        ({"name": "x", "scopes": ["root"]}, "scopes"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["read"], "expiresInDays": 0}, "expiresInDays"),
        ({"name": "x", "scopes": ["read"], "expiresInDays": True}, "expiresInDays"),
        # PostgreSQL's text refuses NUL; a line break in a name forges lines of `keys list`.
        ({"name": "ci\x00", "scopes": ["read"]}, "name"),
        ({"name": "ci\nbot", "scopes": ["read"]}, "name"),
    ],
)
async def test_a_bad_key_request_is_400_naming_the_field(client, engine, payload, field):
    admin = await keys.create_key(engine, "admin", ["admin"])
    response = await client.post("/api/keys", json=payload, headers=bearer(admin.key))
    assert response.status_code == 400, response.text
    assert response.json()["error"].get("field") == field
    assert await key_rows(engine) == 1
