"""JWTs from an identity provider: a real JWKS over HTTP (and a JWKS file), tokens minted with
PyJWT. Every refusal is a 401 naming what is wrong, checked against the database: nothing
written, nothing audited. A valid token is held to its scopes operation by operation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.db import keys
from app.db.audit import audit_table, newest
from app.db.photos import photos
from app.http.jwt_auth import JwtConfig, JwtVerifier, TokenRefused
from app.main import create_app
from app.settings import SettingsError
from tests.app.http.forms import body, field, file, headers, upload_operation
from tests.app.http.idp import (
    AUDIENCE,
    ISSUER,
    Idp,
    JwksServer,
    handmade,
    hs256_with,
    public_pem,
    random_kid,
    rsa_key,
    serving,
)
from tests.app.http.test_access import DELETE, READ_AND_DELETE, bearer, query_cost
from tests.dbstate import snapshot
from tests.images import png


@pytest.fixture(scope="module")
def idp() -> Idp:
    return Idp()


@pytest.fixture
def jwks(idp: Idp):
    with serving(idp.jwks()) as server:
        yield server


@pytest.fixture
def jwt_client(app_client, jwks: JwksServer):
    """`async with jwt_client(**settings) as client:` the app trusting the test's provider."""

    @asynccontextmanager
    async def make(**changes: Any) -> AsyncIterator[httpx.AsyncClient]:
        options = {"jwt_jwks_url": jwks.url, "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}
        async with app_client(**{**options, **changes}) as client:
            yield client

    return make


async def audit_rows(engine) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(audit_table))).all())


def assert_invalid_token(response: httpx.Response, *fragments: str) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith(
        'Bearer realm="batchery", error="invalid_token", error_description="'
    )
    payload = response.json()
    error = payload["error"] if "error" in payload else payload["errors"][0]
    code = error["code"] if "code" in error else error["extensions"]["code"]
    assert code == "UNAUTHENTICATED"
    for fragment in fragments:
        assert fragment in error["message"], error["message"]


def refused_tokens(idp: Idp) -> dict[str, tuple[str, tuple[str, ...]]]:
    now = int(time.time())
    public = public_pem(idp.rsa)
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "exp": now + 600, "scope": "bulk"}
    return {
        "expired": (
            idp.token(scope="read bulk", exp=now - 3600, iat=now - 7200, nbf=now - 7200),
            ("expired at ", "BATCHERY_JWT_LEEWAY_SECONDS"),
        ),
        "wrong audience": (
            idp.token(scope="read bulk", aud="https://other.example.test"),
            ("'https://other.example.test'", f"expects '{AUDIENCE}'", "BATCHERY_JWT_AUDIENCE"),
        ),
        "wrong issuer": (
            idp.token(scope="read bulk", iss="https://evil.example.test/"),
            ("'https://evil.example.test/'", f"'{ISSUER}'", "BATCHERY_JWT_ISSUER"),
        ),
        "bad signature": (
            # Right kid, but signed by another key.
            idp.token(scope="read bulk", key=rsa_key()),
            ("a signature that does not verify", "key 'rsa-1'"),
        ),
        "unknown kid": (
            idp.token(scope="read bulk", kid="not-published"),
            ("key id 'not-published'", "is not in the JWKS at"),
        ),
        "alg none": (
            handmade({"alg": "none", "typ": "JWT", "kid": "rsa-1"}, claims),
            ("algorithm 'none'", "RS256, ES256"),
        ),
        "HS256 keyed with the public key": (
            handmade({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, claims, hs256_with(public)),
            ("algorithm 'HS256'", "BATCHERY_JWT_ALGORITHMS"),
        ),
        "no subject": (idp.token(scope="read bulk", sub=None), ("claim 'sub'",)),
        "not yet valid": (idp.token(scope="read bulk", nbf=now + 3600), ("not valid before",)),
        # PyJWT refuses an `iat` in the future as not yet valid: the message must name `iat`
        # (it read the absent `nbf` and said "not valid before 'None'").
        "issued in the future": (
            idp.token(scope="read bulk", iat=now + 3600, nbf=now - 60),
            ("was issued at ", "in the future", "BATCHERY_JWT_LEEWAY_SECONDS"),
        ),
    }


CASES = [
    "expired",
    "wrong audience",
    "wrong issuer",
    "bad signature",
    "unknown kid",
    "alg none",
    "HS256 keyed with the public key",
    "no subject",
    "not yet valid",
    "issued in the future",
]


@pytest.mark.parametrize("case", CASES)
async def test_each_bad_token_is_refused_with_401_naming_the_problem_and_nothing_written(
    jwt_client, engine, idp, case
):
    token, fragments = refused_tokens(idp)[case]
    before = await snapshot(engine)
    async with jwt_client() as client:
        graphql = await client.post("/graphql", json=DELETE, headers=bearer(token))
        rest = await client.post(
            "/api/bakeries/delete-many", json={"ids": [1]}, headers=bearer(token)
        )
    assert_invalid_token(graphql, *fragments)
    assert_invalid_token(rest, *fragments)
    assert await snapshot(engine) == before
    assert await audit_rows(engine) == []


async def test_a_token_refusal_is_in_the_challenge_header_too(jwt_client, idp):
    token = idp.token(aud="https://other.example.test")
    async with jwt_client() as client:
        response = await client.get("/api/bakeries/1", headers=bearer(token))
    challenge = response.headers["www-authenticate"]
    assert "error_description=\"The bearer token (a JWT) is for the audience 'https://other" in (
        challenge
    )


async def test_a_jwt_is_refused_naming_the_settings_when_the_server_trusts_no_provider(
    client, engine, idp
):
    before = await snapshot(engine)
    response = await client.post("/graphql", json=DELETE, headers=bearer(idp.token(scope="bulk")))
    assert_invalid_token(response, "looks like a JWT", "BATCHERY_JWT_JWKS_URL")
    assert await snapshot(engine) == before


# ---- a valid token, held to its scopes ----


async def test_a_read_token_in_a_json_batch_runs_the_query_and_the_delete_is_forbidden(
    jwt_client, engine, idp
):
    before = await snapshot(engine)
    async with jwt_client() as client:
        response = await client.post(
            "/graphql", json=READ_AND_DELETE, headers=bearer(idp.token(sub="reader"))
        )
    assert response.status_code == 200, response.text
    query, delete = response.json()
    assert query["data"]["bakery"]["id"] == "1"
    [error] = delete["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["missingScopes"] == ["bulk"]
    assert "jwt:reader" in error["message"]
    assert "scopes claim includes it (BATCHERY_JWT_SCOPES_CLAIM)" in error["message"]
    assert await snapshot(engine) == before
    assert await audit_rows(engine) == []


async def test_a_read_token_in_a_multipart_batch_gets_the_writes_forbidden(jwt_client, engine, idp):
    before = await snapshot(engine)
    async with jwt_client() as client:
        response = await client.post(
            "/graphql",
            content=body(
                field("operations", [*READ_AND_DELETE, upload_operation("1")]),
                field("map", {"0": ["2.variables.file"]}),
                file("0", png(b"forbidden"), "cake.png", "image/png"),
            ),
            headers=headers(**bearer(idp.token())),
        )
    assert response.status_code == 200, response.text
    query, delete, upload = response.json()
    assert query["data"]["bakery"]["id"] == "1"
    assert delete["errors"][0]["extensions"]["missingScopes"] == ["bulk"]
    assert upload["errors"][0]["extensions"]["missingScopes"] == ["write"]
    assert await snapshot(engine) == before
    async with engine.connect() as conn:
        assert (await conn.execute(select(photos))).all() == []


async def test_a_read_token_in_a_rest_batch_gets_its_reads_and_its_writes_forbidden(
    jwt_client, engine, idp
):
    before = await snapshot(engine)
    async with jwt_client() as client:
        response = await client.post(
            "/api/batch",
            json={
                "operations": [
                    {"method": "GET", "path": "/api/bakeries/1"},
                    {"method": "POST", "path": "/api/bakeries/delete-many", "body": {"ids": [1]}},
                ]
            },
            headers=bearer(idp.token()),
        )
    assert response.status_code == 207, response.text
    read, delete = response.json()["results"]
    assert read["status"] == 200
    assert delete["status"] == 403
    assert "'bulk'" in delete["body"]["error"]["message"]
    assert "BATCHERY_JWT_SCOPES_CLAIM" in delete["body"]["error"]["message"]
    assert await snapshot(engine) == before


@pytest.mark.parametrize(
    ("claim", "prefix", "value"),
    [
        ("scope", "", "read bulk"),
        ("scp", "", ["read", "bulk"]),
        ("permissions", "batchery:", ["batchery:read", "batchery:bulk", "other:admin"]),
    ],
)
async def test_the_scopes_claim_is_a_string_or_a_list_and_the_audit_trail_names_the_subject(
    jwt_client, engine, idp, claim, prefix, value
):
    token = idp.token(sub="ci-robot", alg="ES256", **{"scope": None, claim: value})
    async with jwt_client(jwt_scopes_claim=claim, jwt_scope_prefix=prefix) as client:
        response = await client.post("/graphql", json=DELETE, headers=bearer(token))
    assert response.json()["data"]["deleteManyBakeries"] == {"success": True, "succeeded": 1}
    [record] = await newest(engine, 10)
    assert record.entry.caller == "jwt:ci-robot"
    assert record.entry.action == "deleteManyBakeries"


@pytest.mark.parametrize("subject", ["robot\x00one", "robot\ud800", "robot\nnewline"])
async def test_a_subject_the_database_cannot_store_is_audited_by_its_hash(
    jwt_client, engine, idp, subject
):
    # A NUL (PostgreSQL text refuses it) or a lone surrogate (not UTF-8) in `sub` made the
    # audit row fail after the write ran: an untraceable write. Such a subject is hashed.
    token = idp.token(sub=subject, scope="read bulk")
    async with jwt_client() as client:
        response = await client.post("/graphql", json=DELETE, headers=bearer(token))
    assert response.json()["data"]["deleteManyBakeries"] == {"success": True, "succeeded": 1}
    [record] = await newest(engine, 10)
    assert record.entry.caller.startswith("jwt:sha256:")
    assert record.entry.action == "deleteManyBakeries"


async def test_the_jwks_can_be_a_file(app_client, engine, idp, tmp_path):
    path = idp.write_jwks(tmp_path / "jwks.json")
    settings = {"jwt_jwks_file": str(path), "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}
    async with app_client(**settings) as client:
        ok = await client.get("/api/bakeries/1", headers=bearer(idp.token()))
        unknown = await client.get("/api/bakeries/1", headers=bearer(idp.token(kid="rotated")))
    assert ok.status_code == 200, ok.text
    assert_invalid_token(unknown, "key id 'rotated'", str(path))


async def test_the_key_can_be_one_pem_file(app_client, idp, tmp_path):
    path = tmp_path / "idp.pem"
    path.write_bytes(public_pem(idp.rsa))
    settings = {"jwt_public_key_file": str(path), "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}
    async with app_client(**settings) as client:
        ok = await client.get("/api/bakeries/1", headers=bearer(idp.token()))
        other = await client.get("/api/bakeries/1", headers=bearer(idp.token(key=rsa_key())))
    assert ok.status_code == 200, ok.text
    assert_invalid_token(other, "a signature that does not verify")


async def test_rate_limits_key_on_the_tokens_subject(jwt_client, app_client, idp):
    query = {"query": "{ bakery(id: 1) { name } }"}
    cost = await query_cost(app_client, query["query"])
    limits = {"rate_limit_enabled": True, "rate_limit": f"{2 * cost}/minute"}
    async with jwt_client(**limits) as client:

        async def status(token: str) -> int:
            return (await client.post("/graphql", json=query, headers=bearer(token))).status_code

        assert [await status(idp.token(sub="alice")) for _ in range(3)] == [200, 200, 429]
        # Another token of the same subject shares its budget; another subject has its own.
        assert await status(idp.token(sub="alice", jti="second")) == 429
        assert await status(idp.token(sub="bob")) == 200


# ---- the provider's keys, fetched without blocking ----


async def test_a_flood_of_unknown_key_ids_costs_the_provider_one_fetch(jwt_client, jwks, idp):
    async with jwt_client() as client:
        assert (await client.get("/api/bakeries/1", headers=bearer(idp.token()))).status_code == 200
        for _ in range(20):
            response = await client.get(
                "/api/bakeries/1", headers=bearer(idp.token(kid=random_kid()))
            )
            assert response.status_code == 401
    # The first use fetched; the unknown ids came within BATCHERY_JWT_JWKS_MIN_REFRESH_SECONDS.
    assert jwks.hits == 1


async def test_fetching_the_keys_never_blocks_other_requests(jwt_client, jwks, engine, idp):
    api_key = (await keys.create_key(engine, "other", ["read"])).key
    jwks.gate.clear()
    async with jwt_client() as client:
        held = asyncio.create_task(client.get("/api/bakeries/1", headers=bearer(idp.token())))
        assert await asyncio.to_thread(jwks.arrived.wait, 10)
        # The JWKS answer is held: the event loop serves other requests meanwhile.
        others = await asyncio.gather(
            client.get("/healthz"), client.get("/api/bakeries/2", headers=bearer(api_key))
        )
        assert not held.done()
        jwks.gate.set()
        answered = await held
    assert [response.status_code for response in others] == [200, 200]
    assert answered.status_code == 200, answered.text


async def test_an_unreachable_provider_is_503_and_retried_at_most_once_per_interval(
    jwt_client, jwks, engine, idp
):
    jwks.status = 500
    before = await snapshot(engine)
    async with jwt_client() as client:
        first = await client.post("/graphql", json=DELETE, headers=bearer(idp.token(scope="bulk")))
        second = await client.post(
            "/api/bakeries/delete-many", json={"ids": [1]}, headers=bearer(idp.token(scope="bulk"))
        )
    for response in (first, second):
        assert response.status_code == 503, response.text
        # The next fetch is allowed BATCHERY_JWT_JWKS_MIN_REFRESH_SECONDS (30) after the first.
        assert 25 <= int(response.headers["retry-after"]) <= 30
    assert first.json()["errors"][0]["extensions"]["code"] == "IDENTITY_PROVIDER_UNAVAILABLE"
    assert "HTTP Error 500" in first.json()["errors"][0]["message"]
    assert second.json()["error"]["code"] == "IDENTITY_PROVIDER_UNAVAILABLE"
    assert "BATCHERY_JWT_JWKS_MIN_REFRESH_SECONDS" in second.json()["error"]["message"]
    assert jwks.hits == 1
    assert await snapshot(engine) == before


async def test_a_provider_that_does_not_answer_times_out(jwt_client, jwks, idp):
    jwks.gate.clear()
    async with jwt_client(jwt_jwks_timeout_seconds=0.3) as client:
        response = await client.get("/api/bakeries/1", headers=bearer(idp.token()))
    assert response.status_code == 503
    assert "timed out" in response.json()["error"]["message"]


async def test_a_provider_dripping_its_answer_is_503_within_the_total_timeout(
    jwt_client, jwks, idp
):
    jwks.drip_seconds = 0.05  # a few hundred bytes: tens of seconds, each read well in time
    async with jwt_client(jwt_jwks_timeout_seconds=0.5) as client:
        response = await asyncio.wait_for(
            client.get("/api/bakeries/1", headers=bearer(idp.token())), 10
        )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "IDENTITY_PROVIDER_UNAVAILABLE"
    assert "BATCHERY_JWT_JWKS_TIMEOUT_SECONDS" in response.json()["error"]["message"]
    assert await asyncio.to_thread(jwks.abandoned.wait, 10)


# ---- settings and scope mapping ----


BOTH = {"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"jwt_jwks_url": "https://idp/jwks", "jwt_issuer": ISSUER}, "BATCHERY_JWT_AUDIENCE"),
        ({"jwt_jwks_url": "https://idp/jwks", "jwt_audience": AUDIENCE}, "BATCHERY_JWT_ISSUER"),
        ({"jwt_issuer": ISSUER}, "BATCHERY_JWT_ISSUER is set but no key source"),
        (
            {"jwt_jwks_url": "https://idp/jwks", "jwt_jwks_file": "/x", **BOTH},
            "set only one of BATCHERY_JWT_JWKS_URL, BATCHERY_JWT_JWKS_FILE",
        ),
        ({"jwt_jwks_url": "ftp://idp/jwks", **BOTH}, "BATCHERY_JWT_JWKS_URL must be an https://"),
        ({"jwt_jwks_file": "/no/such/jwks.json", **BOTH}, "BATCHERY_JWT_JWKS_FILE: cannot use"),
        ({"jwt_public_key_file": "/no/such.pem", **BOTH}, "BATCHERY_JWT_PUBLIC_KEY_FILE: cannot"),
    ],
)
def test_jwt_settings_that_cannot_work_stop_the_start_naming_the_variable(settings, changes, named):
    with pytest.raises(SettingsError, match=named.replace(".", r"\.")):
        create_app(settings.replace(**changes))


@pytest.mark.parametrize(
    ("algorithms", "named"),
    [("RS256, none", "never include none"), ("HS256", "symmetric key"), ("XS1", "unknown")],
)
def test_unsigned_and_symmetric_algorithms_cannot_be_configured(settings, algorithms, named):
    with pytest.raises(SettingsError, match=f"BATCHERY_JWT_ALGORITHMS.*{named}"):
        settings.replace(jwt_algorithms=algorithms)


async def test_unknown_scope_names_are_ignored_and_a_missing_claim_gives_none(
    settings, idp, tmp_path
):
    path = idp.write_jwks(tmp_path / "jwks.json")
    config = JwtConfig.from_settings(
        settings.replace(jwt_jwks_file=str(path), jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    )
    assert config is not None
    verifier = JwtVerifier(config)
    caller = await verifier.caller(idp.token(sub="x", scope="read superuser openid admin"))
    assert (caller.id, caller.scopes, caller.authenticated) == ("jwt:x", {"read", "admin"}, True)
    assert (await verifier.caller(idp.token(scope=None))).scopes == frozenset()
    with pytest.raises(TokenRefused, match="neither a space-separated string nor a list"):
        await verifier.caller(idp.token(scope={"read": True}))
    long_subject = await verifier.caller(idp.token(sub="s" * 100))
    assert long_subject.id.startswith("jwt:sha256:") and len(long_subject.id) <= 64
