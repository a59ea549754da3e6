"""Refused credentials are rate limited per client address: with rate limiting on, an address
that has presented `BATCHERY_RATE_LIMIT_AUTH_FAILURES` wrong keys in a window gets 429 for any
credential until the window ends (a right key too: else the 429s would mark a right guess)."""

from __future__ import annotations

import httpx

from app.db import keys
from app.main import create_app
from tests.app.http.test_access import bearer

SETTING = "BATCHERY_RATE_LIMIT_AUTH_FAILURES"


def guarded(**changes: object) -> dict[str, object]:
    return {
        "auth": "required",
        "rate_limit_enabled": True,
        "rate_limit": "1000/minute",
        "rate_limit_auth_failures": 3,
        **changes,
    }


async def test_an_address_guessing_keys_is_throttled_after_its_allowance(app_client, engine):
    good = (await keys.create_key(engine, "good", ["read"])).key
    async with app_client(**guarded()) as client:
        assert (await client.get("/api/bakeries/1", headers=bearer(good))).status_code == 200
        guesses = [
            await client.get("/api/bakeries/1", headers=bearer(f"bk_guess{n}")) for n in range(3)
        ]
        assert [r.status_code for r in guesses] == [401, 401, 401]
        refused = await client.get("/api/bakeries/1", headers=bearer("bk_guess4"))
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.json()["error"]["code"] == "THROTTLED"
        assert SETTING in refused.json()["error"]["message"]
        over_graphql = await client.post(
            "/graphql", json={"query": "{ __typename }"}, headers=bearer(good)
        )
        assert over_graphql.status_code == 429
        assert over_graphql.json()["errors"][0]["extensions"]["code"] == "THROTTLED"
        # Requests without a credential are not guesses: they get their 401 as before.
        assert (await client.get("/api/bakeries/1")).status_code == 401


async def test_other_addresses_and_servers_without_rate_limits_are_unaffected(engine, settings):
    app = create_app(settings.replace(**guarded()), engine=engine)
    async with app.router.lifespan_context(app):
        for address in ("10.0.0.1", "10.0.0.2"):
            transport = httpx.ASGITransport(app=app, client=(address, 1234))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                codes = [
                    (await client.get("/api/bakeries/1", headers=bearer(f"bk_{n}"))).status_code
                    for n in range(4)
                ]
                assert codes == [401, 401, 401, 429]
    app = create_app(settings.replace(**guarded(rate_limit_enabled=False)), engine=engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for n in range(6):
                response = await client.get("/api/bakeries/1", headers=bearer(f"bk_{n}"))
                assert response.status_code == 401
