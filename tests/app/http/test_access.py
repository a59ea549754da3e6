"""Who may do what over HTTP: no key, a wrong, revoked or expired key, and a key's scopes checked
operation by operation in JSON batches, multipart batches and `POST /api/batch`. Every refusal is
checked against the database: nothing written."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from app.db import keys
from app.db.engine import create_engine
from app.db.photos import photos
from app.main import create_app
from tests.app.http.forms import body, field, file, headers, upload_operation
from tests.dbstate import count, snapshot
from tests.images import png

READ_AND_DELETE = [
    {"query": "{ bakery(id: 1) { id name } }"},
    {"query": 'mutation { deleteManyBakeries(ids: ["1", "2"]) { success succeeded } }'},
]
DELETE = {"query": 'mutation { deleteManyBakeries(ids: ["1"]) { success succeeded } }'}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def new_key(engine, *scopes: str, **options) -> str:
    return (await keys.create_key(engine, "test", scopes, **options)).key


def assert_unauthenticated(response: httpx.Response, *, presented: bool) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert ('error="invalid_token"' in challenge) is presented
    payload = response.json()
    code = (
        payload["error"]["code"]
        if "error" in payload
        else payload["errors"][0]["extensions"]["code"]
    )
    assert code == "UNAUTHENTICATED"


# ---- credentials ----


async def test_without_a_key_in_required_mode_every_write_is_refused_and_nothing_written(
    app_client, engine
):
    before = await snapshot(engine)
    async with app_client(auth="required") as client:
        graphql = await client.post("/graphql", json=DELETE)
        rest = await client.post("/api/bakeries/delete-many", json={"ids": [1]})
        batch = await client.post(
            "/api/batch", json={"operations": [{"method": "DELETE", "path": "/api/bakeries/1"}]}
        )
        query = await client.get("/graphql", params={"query": "{ bakery(id: 1) { id } }"})
        health = await client.get("/healthz")
    for response in (graphql, rest, batch, query):
        assert_unauthenticated(response, presented=False)
    assert "BATCHERY_AUTH=required" in graphql.json()["errors"][0]["message"]
    assert health.status_code == 200
    assert await snapshot(engine) == before


async def test_without_a_key_in_open_mode_everything_is_allowed(client, engine):
    response = await client.post("/graphql", json=DELETE)
    assert response.json()["data"]["deleteManyBakeries"] == {"success": True, "succeeded": 1}
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("mode", ["open", "required"])
@pytest.mark.parametrize(
    "header",
    [
        "Bearer bch_0123456789ab_not-the-secret",  # well-formed, unknown
        "Bearer not-a-batchery-key",
        "Basic dXNlcjpwYXNz",
        "Bearer",
    ],
)
async def test_a_wrong_key_is_refused_in_every_mode_and_nothing_written(
    app_client, engine, mode, header
):
    before = await snapshot(engine)
    async with app_client(auth=mode) as client:
        graphql = await client.post("/graphql", json=DELETE, headers={"Authorization": header})
        rest = await client.post(
            "/api/bakeries/delete-many", json={"ids": [1]}, headers={"Authorization": header}
        )
    assert_unauthenticated(graphql, presented=True)
    assert_unauthenticated(rest, presented=True)
    assert await snapshot(engine) == before


async def test_a_right_id_with_a_wrong_secret_is_refused(client, engine):
    key = await new_key(engine, "read", "bulk")
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    response = await client.post("/graphql", json=DELETE, headers=bearer(forged))
    assert_unauthenticated(response, presented=True)
    assert await count(engine, "bakeries") == 6


async def test_an_expired_key_is_refused(client, engine):
    key = await new_key(engine, "read", "bulk", expires_in=timedelta(seconds=-1))
    response = await client.post("/graphql", json=DELETE, headers=bearer(key))
    assert_unauthenticated(response, presented=True)
    assert "expired" in response.json()["errors"][0]["message"]
    assert await count(engine, "bakeries") == 6


@asynccontextmanager
async def second_process(engine, settings):
    """Another application on the same database, with an engine (a pool) of its own: what a
    second worker process sees."""
    other = create_engine(str(engine.url.render_as_string(hide_password=False)))
    if engine.dialect.name == "postgresql":
        await other.dispose()
        from tests.conftest import create_engine_in_schema

        async with engine.connect() as conn:
            schema = (await conn.exec_driver_sql("SELECT current_schema()")).scalar_one()
        other = create_engine_in_schema(schema)
    app = create_app(settings, engine=other)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://other") as client:
                yield client
    finally:
        await other.dispose()


async def test_a_key_revoked_through_one_process_is_refused_by_another_at_once(
    client, engine, settings
):
    created = await keys.create_key(engine, "ci", ["read", "bulk"])
    async with second_process(engine, settings) as other:
        accepted = await other.post("/graphql", json=DELETE, headers=bearer(created.key))
        assert accepted.json()["data"]["deleteManyBakeries"]["succeeded"] == 1
        # Revoked by the first process (its own engine and pool)...
        assert (await keys.revoke_key(client.app.state.engine, created.info.id)).revoked_at
        # ... refused by the second at its next request, and by the first.
        second_delete = {"query": 'mutation { deleteManyBakeries(ids: ["2"]) { succeeded } }'}
        refused = await other.post("/graphql", json=second_delete, headers=bearer(created.key))
        also_refused = await client.get("/api/bakeries/2", headers=bearer(created.key))
    assert_unauthenticated(refused, presented=True)
    assert "revoked" in refused.json()["errors"][0]["message"]
    assert_unauthenticated(also_refused, presented=True)
    assert await count(engine, "bakeries") == 5  # only the accepted delete happened


async def test_keys_are_never_stored_in_clear(engine):
    new = await keys.create_key(engine, "secret-holder", ["read"])
    # bch_<id>_<secret>: the secret is URL-safe base64, so it may hold "_" itself.
    secret = new.key.split("_", 2)[2]
    assert len(secret) == 43
    async with engine.connect() as conn:
        rows = (await conn.execute(select(keys.keys_table))).all()
    stored = " ".join(str(value) for row in rows for value in row)
    assert secret not in stored and new.key not in stored
    assert keys.hash_key(new.key) in stored


async def test_every_key_check_compares_hashes_in_constant_time(engine, monkeypatch):
    compared: list[tuple[str, str]] = []
    real = keys.hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keys.hmac, "compare_digest", spy)
    key = await new_key(engine, "read")
    assert isinstance(await keys.check_key(engine, key), keys.KeyInfo)
    assert await keys.check_key(engine, key[:-1] + "x") is keys.KeyProblem.UNKNOWN
    # An id no row has still costs a comparison (against a dummy hash), so it is not faster.
    assert await keys.check_key(engine, "bch_ffffffffffff_" + "x" * 43) is keys.KeyProblem.UNKNOWN
    assert len(compared) == 3
    # Always two sha256 hex digests of one length: never the key itself, nor a prefix compare
    # whose time would grow with the characters a guess gets right.
    assert all(len(a) == len(b) == 64 for a, b in compared)
    assert all(key not in (a, b) for a, b in compared)


# ---- scopes, operation by operation ----


@pytest.mark.parametrize("compiled", [True, False])
async def test_a_read_key_in_a_json_batch_runs_the_query_and_the_delete_is_forbidden_alone(
    app_client, engine, compiled
):
    before = await snapshot(engine)
    key = await new_key(engine, "read")
    async with app_client(compiled_execution=compiled) as client:
        response = await client.post("/graphql", json=READ_AND_DELETE, headers=bearer(key))
    assert response.status_code == 200
    query, delete = response.json()
    assert query["data"] == {"bakery": {"id": "1", "name": before["bakeries"][0][2]}}
    assert "data" not in delete
    [error] = delete["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["missingScopes"] == ["bulk"]
    assert "'bulk'" in error["message"] and "deleteManyBakeries" in error["message"]
    assert await snapshot(engine) == before


@pytest.mark.parametrize("compiled", [True, False])
async def test_a_query_needs_read_whichever_executor_runs_it(app_client, engine, compiled):
    key = await new_key(engine, "write")
    async with app_client(compiled_execution=compiled) as client:
        executor = client.app.state.executor
        assert (executor.compiled is not None) is compiled
        lone = await client.post(
            "/graphql",
            json={"query": "{ bakeries(first: 2) { id orders { id } } }"},
            headers=bearer(key),
        )
        via_fragment = await client.post(
            "/graphql",
            json={"query": "query { ...Q } fragment Q on Query { products { name } }"},
            headers=bearer(key),
        )
    for response in (lone, via_fragment):
        assert response.status_code == 403
        assert response.json()["errors"][0]["extensions"]["missingScopes"] == ["read"]
        assert "data" not in response.json()


async def test_a_lone_forbidden_mutation_is_403_and_writes_nothing(client, engine):
    key = await new_key(engine, "read", "write")
    response = await client.post("/graphql", json=DELETE, headers=bearer(key))
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await count(engine, "bakeries") == 6


async def test_a_read_key_in_a_multipart_batch_runs_the_query_and_the_writes_are_forbidden(
    client, engine
):
    before = await snapshot(engine)
    key = await new_key(engine, "read")
    operations = [*READ_AND_DELETE, upload_operation("1")]
    response = await client.post(
        "/graphql",
        content=body(
            field("operations", operations),
            field("map", {"0": ["2.variables.file"]}),
            file("0", png(b"forbidden"), "cake.png", "image/png"),
        ),
        headers=headers(**bearer(key)),
    )
    assert response.status_code == 200, response.text
    query, delete, upload = response.json()
    assert query["data"]["bakery"]["id"] == "1"
    assert delete["errors"][0]["extensions"]["missingScopes"] == ["bulk"]
    assert upload["errors"][0]["extensions"]["missingScopes"] == ["write"]
    assert await snapshot(engine) == before
    async with engine.connect() as conn:
        assert (await conn.execute(select(photos))).all() == []


async def test_a_multipart_request_still_needs_its_preflight_header_with_a_key(client, engine):
    key = await new_key(engine, "read", "write")
    response = await client.post(
        "/graphql",
        content=body(
            field("operations", upload_operation("1")),
            field("map", {"0": ["variables.file"]}),
            file("0", png(b"x"), "cake.png", "image/png"),
        ),
        headers=headers(preflight=False, **bearer(key)),
    )
    assert response.status_code == 400


async def test_a_read_key_in_a_rest_batch_gets_its_reads_and_its_writes_forbidden(client, engine):
    before = await snapshot(engine)
    key = await new_key(engine, "read", "write")
    response = await client.post(
        "/api/batch",
        json={
            "operations": [
                {"method": "GET", "path": "/api/bakeries/1"},
                {"method": "POST", "path": "/api/bakeries/delete-many", "body": {"ids": [1, 2]}},
                # A sub-request's own header is not read: the batch runs as its caller.
                {
                    "method": "DELETE",
                    "path": "/api/bakeries/3",
                    "headers": {"Authorization": "Bearer someone-else"},
                },
            ]
        },
        headers=bearer(key),
    )
    assert response.status_code == 207
    read, delete_many, delete_one = response.json()["results"]
    assert read["status"] == 200 and read["body"]["id"] == "1"
    for refused in (delete_many, delete_one):
        assert refused["status"] == 403
        assert refused["body"]["error"]["code"] == "FORBIDDEN"
        assert "'bulk'" in refused["body"]["error"]["message"]
    assert await snapshot(engine) == before


@pytest.mark.parametrize(
    ("method", "path", "payload", "scope"),
    [
        ("GET", "/api/bakeries", None, "read"),
        ("POST", "/api/bakeries", {"name": "New", "region": "CENTRAL"}, "write"),
        ("DELETE", "/api/bakeries/1", None, "write"),
        ("POST", "/api/bakeries/bulk", {"operation": "DELETE", "records": [{"id": "1"}]}, "bulk"),
        ("POST", "/api/bakeries/delete-many", {"ids": [1]}, "bulk"),
    ],
)
async def test_each_rest_route_needs_its_scope(client, engine, method, path, payload, scope):
    before = await snapshot(engine)
    others = [s for s in ("read", "write", "bulk", "admin") if s != scope]
    without = await client.request(
        method, path, json=payload, headers=bearer(await new_key(engine, *others))
    )
    assert without.status_code == 403
    assert without.json()["error"]["code"] == "FORBIDDEN"
    assert f"'{scope}'" in without.json()["error"]["message"]
    assert await snapshot(engine) == before
    with_it = await client.request(
        method, path, json=payload, headers=bearer(await new_key(engine, scope))
    )
    assert with_it.status_code < 300, with_it.text


async def test_photos_need_read(client, engine):
    response = await client.get("/photos/1", headers=bearer(await new_key(engine, "write")))
    assert response.status_code == 403


async def test_introspection_can_be_turned_off(app_client):
    async with app_client(introspection=False) as client:
        response = await client.post("/graphql", json={"query": "{ __schema { types { name } } }"})
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_graphiql_is_served_without_a_key_in_required_mode(app_client):
    async with app_client(auth="required") as client:
        page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "<html" in page.text.lower()


async def test_an_idempotency_key_is_the_callers_own(client, engine):
    first, second = await new_key(engine, "read", "bulk"), await new_key(engine, "read", "bulk")
    request = {"operation": "DELETE", "records": [{"id": "1"}]}
    shared = {"Idempotency-Key": "same-key"}
    one = await client.post("/api/bakeries/bulk", json=request, headers={**bearer(first), **shared})
    two = await client.post(
        "/api/bakeries/bulk", json=request, headers={**bearer(second), **shared}
    )
    assert one.status_code == 200
    assert "idempotent-replayed" not in two.headers  # not the first caller's stored response
    assert two.json()["results"][0]["errors"][0]["code"] == "NOT_FOUND"
    again = await client.post(
        "/api/bakeries/bulk", json=request, headers={**bearer(first), **shared}
    )
    assert again.headers["idempotent-replayed"] == "true"


async def test_rate_limits_key_on_the_authenticated_caller_then_the_address(app_client, engine):
    first, second = await new_key(engine, "read"), await new_key(engine, "read")
    # Its actual cost is its requested cost: nothing is refunded after it runs.
    query = {"query": "{ bakery(id: 1) { name } }"}
    cost = await query_cost(app_client, query["query"])
    async with app_client(rate_limit_enabled=True, rate_limit=f"{2 * cost}/minute") as client:

        async def served_until_throttled(headers: dict[str, str]) -> int:
            """Requests answered before the first 429 (at most 20)."""
            for served in range(20):
                response = await client.post("/graphql", json=query, headers=headers)
                if response.status_code == 429:
                    return served
                assert response.status_code == 200, response.text
            return 20

        # One address (the test client's) for all: each key has a budget of its own...
        budget = await served_until_throttled(bearer(first))
        assert 2 <= budget < 20
        assert await served_until_throttled(bearer(second)) == budget
        # ... and requests without a key are their address: a budget of its own too.
        assert await served_until_throttled({}) == budget
        # REST is charged to the same budget: the second key has none left.
        assert (await client.get("/api/bakeries/1", headers=bearer(second))).status_code == 429


async def query_cost(app_client, query: str) -> int:
    """What the server charges for `query` (its static cost)."""
    from schema.execution import GraphQLRequest

    async with app_client() as client:
        executor = client.app.state.executor
        return int(executor.estimate(executor.prepare(query), GraphQLRequest(query)).requested)
