"""CORS: none allowed by default (same-origin only); allowed origins get their preflight answered
and the headers a page needs to read responses, others are refused."""

from __future__ import annotations

import pytest

ALLOWED = "http://app.example"
REFUSED = "http://evil.example"


def preflight(origin: str, method: str = "POST", headers: str = "authorization, content-type"):
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


async def test_no_origin_is_allowed_by_default(client):
    response = await client.options("/graphql", headers=preflight(ALLOWED))
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    simple = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Origin": ALLOWED}
    )
    assert "access-control-allow-origin" not in simple.headers


@pytest.mark.parametrize("path", ["/graphql", "/api/batch"])
async def test_an_allowed_origin_gets_its_preflight_and_a_refused_one_does_not(app_client, path):
    async with app_client(cors_allow_origins=ALLOWED) as client:
        allowed = await client.options(
            path,
            headers=preflight(ALLOWED, headers="authorization, content-type, graphql-preflight"),
        )
        refused = await client.options(path, headers=preflight(REFUSED))
        bad_header = await client.options(path, headers=preflight(ALLOWED, headers="x-custom"))
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in allowed.headers["access-control-allow-methods"]
    allowed_headers = allowed.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers and "graphql-preflight" in allowed_headers
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert bad_header.status_code == 400


async def test_an_allowed_origin_can_read_answers_and_refusals(app_client):
    async with app_client(cors_allow_origins=ALLOWED, auth="required") as client:
        refusal = await client.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"Origin": ALLOWED}
        )
    assert refusal.status_code == 401
    assert refusal.headers["access-control-allow-origin"] == ALLOWED
    exposed = refusal.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed and "www-authenticate" in exposed
