"""A bulk job followed live over a real socket: bulkJobProgress over WebSocket
(graphql-transport-ws) and over SSE, each from its first event to the final one, which matches
the job's row (GET /api/jobs/{id})."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
from websockets.sync.client import connect

from app.db import keys
from app.db.engine import create_engine
from tests.app.http.jobs_kit import bakeries_jsonl, bearer, check_progress_order, sse_events
from tests.live.server import LiveServer

PROGRESS = (
    "subscription($id: ID!) { bulkJobProgress(id: $id) "
    "{ jobId status total processed succeeded failed rate etaSeconds final } }"
)
RECORDS = 3000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Frequent progress events, so a job of a few thousand records sends several.
    with LiveServer(
        tmp_path_factory.mktemp("jobs-live"), jobs_progress_interval_seconds=0.01
    ) as live:
        assert httpx.get(live.url + "/healthz").status_code == 200
        yield live


@pytest.fixture(scope="module")
def key(server: LiveServer) -> str:
    async def create() -> str:
        engine = create_engine(server.settings.resolved_database_url)
        try:
            return (await keys.create_key(engine, "live-jobs", ["read", "bulk"])).key
        finally:
            await engine.dispose()

    return asyncio.run(create())


def submit(server: LiveServer, key: str, count: int) -> dict:
    response = httpx.post(
        f"{server.url}/api/jobs",
        params={"entity": "bakeries", "operation": "CREATE"},
        content=bakeries_jsonl(count, frozenset({10, 20})),
        headers={"Content-Type": "application/x-ndjson", **bearer(key)},
    )
    assert response.status_code == 202, response.text
    return response.json()


def row(server: LiveServer, key: str, job_id: str) -> dict:
    return httpx.get(f"{server.url}/api/jobs/{job_id}", headers=bearer(key)).json()


def assert_final_matches_row(events: list[dict], job: dict) -> None:
    final = events[-1]
    assert final["status"] == job["status"] == "COMPLETED"
    for name in ("total", "processed", "succeeded", "failed"):
        assert final[name] == job[name], name
    assert (job["processed"], job["failed"]) == (RECORDS, 2)


def test_progress_over_websocket_arrives_in_order_to_a_final_event_matching_the_row(server, key):
    url = server.url.replace("http://", "ws://") + "/graphql"
    with connect(url, subprotocols=["graphql-transport-ws"], open_timeout=10) as ws:
        ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
        )
        assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
        job = submit(server, key, RECORDS)
        payload = {"query": PROGRESS, "variables": {"id": job["id"]}}
        ws.send(json.dumps({"id": "p", "type": "subscribe", "payload": payload}))
        events = []
        while True:
            message = json.loads(ws.recv(timeout=60))
            if message["type"] == "complete":
                break
            assert message["type"] == "next", message
            events.append(message["payload"]["data"]["bulkJobProgress"])
    check_progress_order(events)
    assert all(event["jobId"] == job["id"] for event in events)
    assert_final_matches_row(events, row(server, key, job["id"]))


def test_progress_over_sse_arrives_in_order_to_a_final_event_matching_the_row(server, key):
    job = submit(server, key, RECORDS)
    body = {"query": PROGRESS, "variables": {"id": job["id"]}}
    headers = {"Accept": "text/event-stream", **bearer(key)}
    with httpx.stream(
        "POST", f"{server.url}/graphql", json=body, headers=headers, timeout=60
    ) as response:
        assert response.status_code == 200
        text = "".join(response.iter_text())
    events = list(sse_events(text))
    assert events[-1] == ("complete", None)
    progress = [data["data"]["bulkJobProgress"] for event, data in events if event == "next"]
    check_progress_order(progress)
    assert_final_matches_row(progress, row(server, key, job["id"]))


def test_rest_events_of_a_job_end_with_its_final_event(server, key):
    job = submit(server, key, RECORDS)
    with httpx.stream(
        "GET", f"{server.url}/api/jobs/{job['id']}/events", headers=bearer(key), timeout=60
    ) as response:
        text = "".join(response.iter_text())
    progress = [data for event, data in sse_events(text) if event == "progress"]
    check_progress_order(progress)
    assert_final_matches_row(progress, row(server, key, job["id"]))
