"""API keys managed over GraphQL by `admin` callers: listed without their secret, created (shown
once, usable at once), revoked (refused from the next request on, by another process too), and
each change in the audit trail. Callers without `admin` get FORBIDDEN naming it, nothing made."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.db import keys
from app.db.audit import newest
from tests.app.http.test_access import DELETE, bearer, second_process

CREATE = """mutation($name: String!, $scopes: [ApiKeyScope!]!, $days: Int) {
  createApiKey(name: $name, scopes: $scopes, expiresInDays: $days) {
    key apiKey { id name scopes expiresAt revokedAt active }
  }
}"""
REVOKE = "mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt active } }"
LIST = "{ apiKeys { id name scopes createdAt revokedAt active } }"


async def key_rows(engine) -> int:
    async with engine.connect() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(keys.keys_table))).scalar_one()
        )


async def admin_key(engine) -> keys.NewKey:
    return await keys.create_key(engine, "admin", ["read", "admin"])


async def gql(client, key: str, query: str, **variables):
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=bearer(key)
    )
    return response


async def test_a_key_created_over_the_api_works_at_once_and_is_listed_without_its_secret(
    client, engine
):
    admin = await admin_key(engine)
    created = await gql(
        client, admin.key, CREATE, name="nightly import", scopes=["READ", "BULK"], days=30
    )
    assert created.status_code == 200, created.text
    payload = created.json()["data"]["createApiKey"]
    new_key, record = payload["key"], payload["apiKey"]
    assert new_key.startswith(f"bch_{record['id']}_")
    assert record["scopes"] == ["READ", "BULK"] and record["active"] and record["expiresAt"]
    # Usable at the very next request: a bulk delete with it runs.
    deleted = await client.post("/graphql", json=DELETE, headers=bearer(new_key))
    assert deleted.json()["data"]["deleteManyBakeries"]["succeeded"] == 1
    listed = (await gql(client, admin.key, LIST)).json()["data"]["apiKeys"]
    assert [k["name"] for k in listed] == ["admin", "nightly import"]
    assert new_key not in str(listed)
    # Stored as a hash only.
    async with engine.connect() as conn:
        stored = (await conn.execute(select(keys.keys_table))).all()
    assert new_key not in str(stored)


async def test_a_key_revoked_over_the_api_is_refused_at_once_by_every_process(
    client, engine, settings
):
    admin = await admin_key(engine)
    victim = await keys.create_key(engine, "laptop", ["read", "bulk"])
    async with second_process(engine, settings) as other:
        assert (await other.get("/api/bakeries/1", headers=bearer(victim.key))).status_code == 200
        revoked = await gql(client, admin.key, REVOKE, id=victim.info.id)
        assert revoked.json()["data"]["revokeApiKey"]["active"] is False
        here = await client.post("/graphql", json=DELETE, headers=bearer(victim.key))
        there = await other.post("/graphql", json=DELETE, headers=bearer(victim.key))
    for response in (here, there):
        assert response.status_code == 401
        assert "revoked" in response.json()["errors"][0]["message"]
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(keys.keys_table).where(keys.keys_table.c.id == victim.info.id)
            )
        ).one()
    assert row.revoked_at is not None


@pytest.mark.parametrize(
    ("query", "variables", "field"),
    [
        (LIST, {}, "Query.apiKeys"),
        (CREATE, {"name": "sneaky", "scopes": ["ADMIN"]}, "Mutation.createApiKey"),
        (REVOKE, {"id": "000000000000"}, "Mutation.revokeApiKey"),
    ],
)
async def test_key_management_without_admin_is_forbidden_naming_admin(
    client, engine, query, variables, field
):
    loader = await keys.create_key(engine, "loader", ["read", "write", "bulk"])
    before = await key_rows(engine)
    response = await gql(client, loader.key, query, **variables)
    assert response.status_code == 403
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["missingScopes"] == ["admin"]
    assert error["extensions"]["fields"] == [field]
    assert await key_rows(engine) == before
    assert await newest(engine, 10) == []


async def test_creating_and_revoking_keys_is_in_the_audit_trail(client, engine):
    admin = await admin_key(engine)
    created = await gql(client, admin.key, CREATE, name="ci", scopes=["READ"])
    key_id = created.json()["data"]["createApiKey"]["apiKey"]["id"]
    await gql(client, admin.key, REVOKE, id=key_id)
    missing = await gql(client, admin.key, REVOKE, id="ffffffffffff")
    assert missing.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    trail = list(reversed(await newest(engine, 10)))
    assert [(r.entry.caller, r.entry.action, r.entry.outcome) for r in trail] == [
        (f"key:{admin.info.id}", "createApiKey", "ok"),
        (f"key:{admin.info.id}", "revokeApiKey", "ok"),
        (f"key:{admin.info.id}", "revokeApiKey", "error"),
    ]
    assert trail[1].entry.request_id != trail[0].entry.request_id


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"name": " ", "scopes": ["READ"]}, "name must be 1 to 200 characters"),
        ({"name": "x" * 201, "scopes": ["READ"]}, "name must be 1 to 200 characters"),
        ({"name": "x", "scopes": []}, "scopes must name at least one scope"),
        ({"name": "x", "scopes": ["READ"], "days": 0}, "expiresInDays must be 1 to 3650"),
    ],
)
async def test_bad_key_requests_are_refused_naming_the_argument(client, engine, variables, named):
    admin = await admin_key(engine)
    before = await key_rows(engine)
    response = await gql(client, admin.key, CREATE, **variables)
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert named in error["message"]
    assert await key_rows(engine) == before


async def test_an_unknown_scope_is_refused_by_the_schema(client, engine):
    admin = await admin_key(engine)
    response = await gql(client, admin.key, CREATE, name="x", scopes=["SUPERUSER"])
    assert response.json().get("data") is None
    assert "SUPERUSER" in response.json()["errors"][0]["message"]
    assert await key_rows(engine) == 1
