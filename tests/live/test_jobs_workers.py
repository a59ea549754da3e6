"""Bulk jobs scaled out: an API process and two `batchery worker` processes sharing PostgreSQL
and Redis. The worker running a job is killed (SIGKILL) in the middle of it; the other takes the
job over once the dead one's lease runs out and finishes it, with no record written twice and
none lost, and each result line written once. The progress a worker process publishes reaches a
watcher in another process (this test's, which submits as an API process does: JobsService with
the shared queue, running nothing itself).

Which worker runs the job is read from the job's row (`lease_owner` holds the worker's pid); the
kill lands once the job's progress says records are committed and more remain, never after a
sleep.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select

from app.bulk.jobs.config import JobsConfig
from app.bulk.jobs.files import JobFiles
from app.bulk.jobs.model import FileFormat, JobCounts, JobProgress, JobSpec, JobStatus
from app.bulk.jobs.service import JobsService
from app.bulk.model import Operation
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
        workers = {}
        engine = create_engine(url)
        config = JobsConfig(
            jobs_dir=tmp_path / "jobs",
            broker_url=REDIS_URL,
            key_prefix=key_prefix,
            lease_seconds=LEASE_SECONDS,
        )
        service = JobsService(engine, config)  # enqueues; runs nothing
        try:
            for _ in range(2):
                worker = KillableWorker(env).start()
                workers[worker.pid] = worker
            await service.start()
            spec = JobSpec("bakeries", Operation.CREATE, FileFormat.JSONL)
            job = await service.submit(spec, records(prefix), "key:live")
            assert job.counts.total == RECORDS

            seen: list[JobProgress] = []
            killed: int | None = None
            async for event in service.watch(job.id):
                seen.append(event)
                if killed is None and KILL_AFTER <= event.counts.processed < RECORDS:
                    row = await service.get(job.id)
                    assert row is not None and row.status is JobStatus.RUNNING
                    killed = pid_of(row.lease_owner)
                    workers[killed].kill()
            assert killed is not None, f"the job ended before {KILL_AFTER} records: {seen[-1]}"

            done = await service.get(job.id)
            assert done is not None
            assert (done.status, done.counts) == (
                JobStatus.COMPLETED,
                JobCounts(RECORDS, RECORDS, RECORDS, 0),
            ), done
            assert done.attempts >= 2
            (survivor,) = (pid for pid in workers if pid != killed)
            assert pid_of(done.lease_owner) == survivor  # the one that finished it

            # The watcher's events came from the worker processes, in order, to the final row.
            processed = [event.counts.processed for event in seen]
            assert processed == sorted(processed)
            assert any(0 < count < RECORDS for count in processed)
            assert seen[-1].final and seen[-1].counts == done.counts

            async with engine.connect() as conn:
                written, distinct = (
                    await conn.execute(
                        select(func.count(), func.count(func.distinct(bakeries.c.external_id)))
                        .select_from(bakeries)
                        .where(bakeries.c.external_id.like(f"{prefix}%"))
                    )
                ).one()
            assert (written, distinct) == (RECORDS, RECORDS)

            results = JobFiles.of(config.jobs_dir, job.id, FileFormat.JSONL).results
            lines = [orjson.loads(line)["line"] for line in results.read_bytes().splitlines()]
            assert sorted(lines) == list(range(1, RECORDS + 1))

            # The survivor stops cleanly on SIGTERM.
            workers[survivor].process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            assert workers[survivor].process.wait(timeout=30) == 0  # type: ignore[union-attr]
        finally:
            await service.stop()
            for worker in workers.values():
                worker.kill()
            api.kill()
            await engine.dispose()
