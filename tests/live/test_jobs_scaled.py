"""The API scaled out, as a client sees it: `batchery serve` enqueues on Redis, a `batchery worker`
process runs the jobs, and the progress the worker publishes reaches the client through the API
process: `batchery jobs submit --watch` to its final event, and a WebSocket subscription."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from app.cli import main
from tests.app.http.jobs_kit import bakeries_jsonl, check_progress_order
from tests.live.killable import KillableServer, KillableWorker
from tests.redis import REDIS_URL, redis_available

pytestmark = pytest.mark.skipif(not redis_available(), reason=f"no Redis at {REDIS_URL}")

RECORDS = 4000
PROGRESS = (
    "subscription($id: ID!) { bulkJobProgress(id: $id) "
    "{ status total processed succeeded failed final } }"
)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KillableServer]:
    root = tmp_path_factory.mktemp("scaled")
    env = {
        "BATCHERY_DATA_DIR": str(root / "data"),
        "BATCHERY_JOBS_DIR": str(root / "jobs"),
        "BATCHERY_JOBS_BROKER": REDIS_URL,
        "BATCHERY_JOBS_KEY_PREFIX": f"test-{uuid.uuid4().hex}",
        "BATCHERY_JOBS_PROGRESS_INTERVAL_SECONDS": "0.02",
    }
    server = KillableServer(env).start()  # makes the database before the worker starts
    worker = KillableWorker(env)
    try:
        worker.start()
        yield server
    finally:
        worker.stop()
        server.stop()


def test_the_cli_watches_a_job_a_worker_process_runs_to_its_end(api, tmp_path: Path, capsys):
    records = tmp_path / "bakeries.jsonl"
    records.write_bytes(bakeries_jsonl(RECORDS, frozenset({100})))
    status = main(
        [
            "jobs",
            "submit",
            str(records),
            "--entity",
            "bakeries",
            "--operation",
            "CREATE",
            "--url",
            api.url,
            "--watch",
        ]
    )
    out, err = capsys.readouterr()
    assert status == 1, err  # one record failed
    job_id = out.strip()
    assert f"job {job_id} COMPLETED: {RECORDS - 1} of {RECORDS} records written, 1 failed" in err
    row = httpx.get(f"{api.url}/api/jobs/{job_id}").json()
    assert (row["processed"], row["failed"]) == (RECORDS, 1)


def test_a_websocket_subscriber_on_the_api_gets_the_workers_progress(api):
    response = httpx.post(
        f"{api.url}/api/jobs",
        params={"entity": "bakeries", "operation": "CREATE"},
        content=bakeries_jsonl(RECORDS),
        headers={"Content-Type": "application/x-ndjson"},
    )
    job = response.json()
    url = api.url.replace("http://", "ws://") + "/graphql"
    with connect(url, subprotocols=["graphql-transport-ws"], open_timeout=10) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
        payload = {"query": PROGRESS, "variables": {"id": job["id"]}}
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        events = []
        while (message := json.loads(ws.recv(timeout=60)))["type"] == "next":
            events.append(message["payload"]["data"]["bulkJobProgress"])
    assert message == {"id": "1", "type": "complete"}
    check_progress_order(events)
    row = httpx.get(f"{api.url}/api/jobs/{job['id']}").json()
    assert events[-1]["status"] == row["status"] == "COMPLETED"
    assert events[-1]["processed"] == row["processed"] == RECORDS


def test_open_streams_end_cleanly_when_the_api_process_shuts_down(tmp_path: Path):
    # No worker: the job stays CREATED, so its streams stay open until the server stops.
    env = {
        "BATCHERY_DATA_DIR": str(tmp_path / "data"),
        "BATCHERY_JOBS_DIR": str(tmp_path / "jobs"),
        "BATCHERY_JOBS_BROKER": REDIS_URL,
        "BATCHERY_JOBS_KEY_PREFIX": f"test-{uuid.uuid4().hex}",
    }
    server = KillableServer(env).start()
    try:
        job = httpx.post(
            f"{server.url}/api/jobs",
            params={"entity": "bakeries", "operation": "CREATE"},
            content=bakeries_jsonl(3),
            headers={"Content-Type": "application/x-ndjson"},
        ).json()
        body = {"query": PROGRESS, "variables": {"id": job["id"]}}
        with (
            httpx.stream("GET", f"{server.url}/api/jobs/{job['id']}/events", timeout=60) as rest,
            httpx.stream(
                "POST",
                f"{server.url}/graphql",
                json=body,
                headers={"Accept": "text/event-stream"},
                timeout=60,
            ) as graphql,
        ):
            rest_lines, graphql_lines = rest.iter_lines(), graphql.iter_lines()
            # The first event of each (the job as it is) says both streams are open.
            assert next(line for line in rest_lines if line.startswith("data:"))
            assert next(line for line in graphql_lines if line.startswith("data:"))
            server.stop()  # SIGTERM
            # Both end as complete responses (an abrupt end raises here), with nothing more.
            assert not [line for line in rest_lines if line.startswith("data:")]
            assert not [line for line in graphql_lines if line.startswith("data:")]
    finally:
        server.kill()
    assert server.process is not None and server.process.returncode == 0
    log = "".join(server.log)
    assert "ASGI callable returned without completing response" not in log, log
