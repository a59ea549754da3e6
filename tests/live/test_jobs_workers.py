"""Bulk jobs scaled out: an API process and two `batchery worker` processes sharing PostgreSQL
and Redis. The job is submitted to the API (`POST /api/jobs`) and watched there
(`GET /api/jobs/{id}/events`, SSE): the progress the worker processes publish reaches a client
of the API process. The worker running the job is killed (SIGKILL) in the middle of it; the
other takes the job over once the dead one's lease runs out and finishes it, with no record
written twice and none lost, and each result line written once.

Which worker runs the job is read from the job's row (`lease_owner` holds the worker's pid); the
kill lands once the job's progress says records are committed and more remain, never after a
sleep.
"""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from app.bulk.jobs.files import JobFiles
from app.bulk.jobs.model import FileFormat, JobCounts, JobStatus
from app.db import jobs
from app.db.engine import create_engine
from app.db.reads import bakeries
from tests.conftest import POSTGRES_UP, POSTGRES_URL
from tests.live.killable import KillableServer, KillableWorker
from tests.live.process import postgres_role
from tests.redis import REDIS_URL, redis_available

pytestmark = [
    pytest.mark.skipif(not redis_available(), reason=f"no Redis at {REDIS_URL}"),
    pytest.mark.skipif(not POSTGRES_UP, reason=f"PostgreSQL not reachable at {POSTGRES_URL}"),
]

RECORDS = 30_000
# Short, so the surviving worker takes the job over within seconds of the kill.
LEASE_SECONDS = 2.0
# Killed once this many records are committed (and the job is not over).
KILL_AFTER = 2_000


async def records(prefix: str) -> AsyncIterator[bytes]:
    for start in range(0, RECORDS, 1000):
        yield b"".join(
            orjson.dumps({"name": f"Live {n}", "region": "CENTRAL", "externalId": f"{prefix}{n}"})
            + b"\n"
            for n in range(start, min(start + 1000, RECORDS))
        )


def pid_of(lease_owner: str | None) -> int:
    assert lease_owner is not None
    return int(lease_owner.split(":")[1])  # host:pid:random (app/bulk/jobs/worker.py)


async def test_a_job_whose_worker_is_killed_is_finished_by_another_exactly_once(tmp_path: Path):
    prefix = f"live-{uuid.uuid4().hex[:8]}-"
    key_prefix = f"test-{uuid.uuid4().hex}"
    async with postgres_role(POSTGRES_URL) as (url, _role):
        env = {
            "BATCHERY_DATABASE_URL": url,
            "BATCHERY_DATA_DIR": str(tmp_path / "data"),
            "BATCHERY_JOBS_DIR": str(tmp_path / "jobs"),
            "BATCHERY_JOBS_BROKER": REDIS_URL,
            "BATCHERY_JOBS_KEY_PREFIX": key_prefix,
            "BATCHERY_JOBS_LEASE_SECONDS": str(LEASE_SECONDS),
            "BATCHERY_JOBS_PROGRESS_INTERVAL_SECONDS": "0.05",
            "BATCHERY_JOBS_WORKER_CONCURRENCY": "1",
        }
        api = KillableServer(env).start()  # migrates the database before the workers start
        workers: dict[int, KillableWorker] = {}
        engine = create_engine(url)
        try:
            for _ in range(2):
                worker = KillableWorker(env).start()
                workers[worker.pid] = worker
            async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
                submitted = await client.post(
                    "/api/jobs",
                    params={"entity": "bakeries", "operation": "CREATE"},
                    headers={"Content-Type": "application/x-ndjson"},
                    content=records(prefix),
                )
                assert submitted.status_code == 202, submitted.text
                job_id = submitted.json()["id"]

                seen: list[dict] = []
                killed: int | None = None
                async for event in progress(client, job_id):
                    seen.append(event)
                    if killed is None and KILL_AFTER <= event["processed"] < RECORDS:
                        row = await jobs.get_job(engine, job_id)
                        assert row is not None and row.status is JobStatus.RUNNING
                        killed = pid_of(row.lease_owner)
                        workers[killed].kill()
                assert killed is not None, f"the job ended before {KILL_AFTER} records: {seen}"
                answered = (await client.get(f"/api/jobs/{job_id}")).json()

            done = await jobs.get_job(engine, job_id)
            assert done is not None
            assert (done.status, done.counts) == (
                JobStatus.COMPLETED,
                JobCounts(RECORDS, RECORDS, RECORDS, 0),
            ), done
            assert done.attempts >= 2
            (survivor,) = (pid for pid in workers if pid != killed)
            assert pid_of(done.lease_owner) == survivor  # the one that finished it

            # The API's client saw the workers' progress in order, to the final row.
            processed = [event["processed"] for event in seen]
            assert processed == sorted(processed)
            assert any(0 < count < RECORDS for count in processed)
            assert seen[-1]["final"] and seen[-1]["status"] == "COMPLETED"
            assert seen[-1]["processed"] == answered["processed"] == RECORDS

            async with engine.connect() as conn:
                written, distinct = (
                    await conn.execute(
                        select(func.count(), func.count(func.distinct(bakeries.c.external_id)))
                        .select_from(bakeries)
                        .where(bakeries.c.external_id.like(f"{prefix}%"))
                    )
                ).one()
            assert (written, distinct) == (RECORDS, RECORDS)

            results = JobFiles.of(tmp_path / "jobs", job_id, FileFormat.JSONL).results
            lines = [orjson.loads(line)["line"] for line in results.read_bytes().splitlines()]
            assert sorted(lines) == list(range(1, RECORDS + 1))

            # The survivor stops cleanly on SIGTERM.
            survivor_process = workers[survivor].process
            assert survivor_process is not None
            survivor_process.send_signal(signal.SIGTERM)
            assert survivor_process.wait(timeout=30) == 0
        finally:
            for worker in workers.values():
                worker.kill()
            api.kill()
            await engine.dispose()


async def progress(client: httpx.AsyncClient, job_id: str) -> AsyncIterator[dict]:
    """The job's SSE progress events from the API, each as soon as it arrives."""
    async with client.stream("GET", f"/api/jobs/{job_id}/events") as response:
        assert response.status_code == 200
        data: list[str] = []
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                data.append(line[5:].strip())
            elif not line and data:
                yield json.loads("\n".join(data))
                data = []
