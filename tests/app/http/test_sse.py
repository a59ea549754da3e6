"""GraphQL over SSE on /graphql (app/http/sse.py), in-process: which requests are streams, and
the refusals that come before any stream (the streams themselves: tests/live/)."""

from __future__ import annotations

import pytest

from app.http.sse import wants_event_stream

PROGRESS = 'subscription { bulkJobProgress(id: "0") { processed final } }'
STREAM = {"Accept": "text/event-stream"}


@pytest.mark.parametrize(
    ("accept", "streams"),
    [
        ("text/event-stream", True),
        ("text/event-stream, application/json;q=0.5", True),
        ("application/json, text/event-stream;q=0.5", False),
        ("application/json", False),
        (None, False),
        ("*/*", False),
        ("text/event-stream;q=0", False),
    ],
)
def test_which_accept_headers_ask_for_a_stream(accept, streams):
    assert wants_event_stream(accept) is streams


async def test_a_subscription_over_the_rate_budget_is_429_before_it_starts(app_client):
    async with app_client(rate_limit_enabled=True, rate_limit="5/minute") as client:
        response = await client.post("/graphql", json={"query": PROGRESS}, headers=STREAM)
    assert response.status_code == 429
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "THROTTLED"
    assert error["extensions"]["setting"] == "BATCHERY_RATE_LIMIT"


async def test_a_query_asking_for_a_stream_is_told_to_use_plain_http(client):
    response = await client.post(
        "/graphql", json={"query": "{ products { name } }"}, headers=STREAM
    )
    assert response.status_code == 400
    assert "subscription" in response.json()["errors"][0]["message"]


async def test_a_subscription_over_the_cost_limit_is_refused_naming_the_setting(app_client):
    async with app_client(max_operation_cost=1) as client:
        response = await client.post("/graphql", json={"query": PROGRESS}, headers=STREAM)
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["setting"] == "BATCHERY_MAX_OPERATION_COST"


async def test_an_invalid_subscription_is_400_with_the_validation_error(client):
    response = await client.post(
        "/graphql", json={"query": "subscription { nope }"}, headers=STREAM
    )
    assert response.status_code == 400
    assert "nope" in response.json()["errors"][0]["message"]
