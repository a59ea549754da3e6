"""JobsService embedded (the API process runs the jobs, taskiq's in-memory broker): a file
submitted is stored, counted, run to the end by the real runner, and its rows, counts and
files are right; refusals name their setting and keep nothing; cancel and the stats. On SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bulk.jobs.config import JobsConfig
from app.bulk.jobs.files import JobFiles
from app.bulk.jobs.model import FileFormat, Job, JobCounts, JobProgress, JobSpec, JobStatus
from app.bulk.jobs.progress import ProgressBus
from app.bulk.jobs.runner import JobRunner, RunnerConfig
from app.bulk.jobs.service import JobRefused, JobsService, make_bus
from app.bulk.jobs.worker import Execute
from app.bulk.model import BatchOptions, Operation
from app.db import jobs as rows
from app.db.reads import bakeries
from app.db.statements import count_statements
from tests.redis import REDIS_URL, redis_available

SPEC = JobSpec("bakeries", Operation.CREATE, FileFormat.JSONL)


def jsonl(count: int, *, bad: tuple[int, ...] = (), prefix: str = "B") -> bytes:
    """`count` bakeries, one a line; the lines numbered in `bad` (1-based) lack a region."""
    lines = []
    for number in range(1, count + 1):
        record = {"name": f"Bakery {number}", "externalId": f"{prefix}-{number}"}
        if number not in bad:
            record["region"] = "CENTRAL"
        lines.append(orjson.dumps(record))
    return b"\n".join(lines) + b"\n"


async def chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def make_config(tmp_path: Path, **changes: object) -> JobsConfig:
    values: dict[str, object] = {"jobs_dir": tmp_path / "jobs", "progress_interval_seconds": 0.01}
    values.update(changes)
    return JobsConfig(**values)  # type: ignore[arg-type]


def executor(engine: AsyncEngine, config: JobsConfig, bus: ProgressBus) -> Execute:
    """The real runner, its progress on `bus` (as app/jobs_settings.py puts it together)."""
    runner_config = RunnerConfig(
        lease_seconds=config.lease_seconds,
        progress_interval_seconds=config.progress_interval_seconds,
        max_atomic_records=config.max_atomic_records,
        max_line_bytes=config.max_line_bytes,
        fsync=False,
    )

    async def execute(job: Job, worker: str) -> None:
        runner = JobRunner(engine, config.jobs_dir, worker, runner_config, progress=bus.publish)
        await runner.run(job)

    return execute


def make_service(
    engine: AsyncEngine, tmp_path: Path, *, runs: bool = True, **changes: object
) -> JobsService:
    config = make_config(tmp_path, **changes)
    bus = make_bus(config)  # in memory; on Redis with a broker URL
    execute = executor(engine, config, bus) if runs else None
    return JobsService(engine, config, execute=execute, bus=bus)


@pytest_asyncio.fixture
async def service(empty_engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[JobsService]:
    made = make_service(empty_engine, tmp_path)
    await made.start()
    yield made
    await made.stop()


@pytest_asyncio.fixture
async def idle(empty_engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[JobsService]:
    """A service that enqueues and runs nothing (as an API process with a shared queue)."""
    made = make_service(empty_engine, tmp_path, runs=False, max_active_per_client=2)
    await made.start()
    yield made
    await made.stop()


async def final_of(service: JobsService, job_id: str) -> list[JobProgress]:
    events = [event async for event in service.watch(job_id)]
    processed = [event.counts.processed for event in events]
    assert processed == sorted(processed), "counts never go backwards"
    assert events[-1].final and not any(event.final for event in events[:-1])
    return events


async def created_by_key(engine: AsyncEngine, prefix: str) -> list[str]:
    async with engine.connect() as conn:
        found = await conn.execute(
            select(bakeries.c.external_id).where(bakeries.c.external_id.like(f"{prefix}-%"))
        )
        return [row[0] for row in found]


async def test_a_submitted_file_runs_to_the_end_with_its_rows_counts_and_files(
    service, empty_engine, backend
):
    with count_statements(empty_engine) as log:
        job = await service.submit(SPEC, chunks(jsonl(500, bad=(7, 300))), "key:a")
    # The client's limit before the upload, then in the row's transaction (PostgreSQL: the
    # owner's advisory lock first), the row: the job itself runs in the background, uncounted.
    assert log.count == (4 if backend == "postgresql" else 3), log
    assert (job.status, job.counts.total, job.owner) == (JobStatus.CREATED, 500, "key:a")

    events = await final_of(service, job.id)
    done = await service.get(job.id)
    assert done is not None
    assert (done.status, done.counts) == (JobStatus.COMPLETED, JobCounts(500, 500, 498, 2))
    assert events[-1].counts == done.counts and events[-1].status is done.status

    keys = await created_by_key(empty_engine, "B")
    assert len(keys) == len(set(keys)) == 498
    assert "B-7" not in keys and "B-300" not in keys

    files = JobFiles.of(service.config.jobs_dir, job.id, FileFormat.JSONL)
    results = [orjson.loads(line) for line in files.results.read_bytes().splitlines()]
    assert [result["line"] for result in results] == list(range(1, 501))
    assert [r["line"] for r in results if not r["success"]] == [7, 300]
    failed = [orjson.loads(line) for line in files.failed.read_bytes().splitlines()]
    assert [record["externalId"] for record in failed] == ["B-7", "B-300"]


async def test_a_line_over_the_line_limit_is_reported_and_skipped_the_rest_written(
    empty_engine, tmp_path
):
    service = make_service(empty_engine, tmp_path, max_line_bytes=4096)
    await service.start()
    try:
        huge = b'{"name": "' + b"h" * (3 * 1024 * 1024) + b'", "region": "CENTRAL"}\n'
        data = jsonl(2, prefix="L") + huge + jsonl(1, prefix="M")
        job = await service.submit(SPEC, chunks(data, size=64 * 1024), "key:a")
        assert job.counts.total == 4  # the long line counted as a record, unread
        events = await final_of(service, job.id)
    finally:
        await service.stop()
    assert (events[-1].status, events[-1].counts) == (JobStatus.COMPLETED, JobCounts(4, 4, 3, 1))
    files = JobFiles.of(service.config.jobs_dir, job.id, FileFormat.JSONL)
    results = [orjson.loads(line) for line in files.results.read_bytes().splitlines()]
    (bad,) = [r for r in results if not r["success"]]
    assert bad["line"] == 3 and bad["errors"][0]["code"] == "INVALID_VALUE"
    assert "longer than 4096 bytes" in bad["errors"][0]["message"]
    assert "BATCHERY_JOBS_MAX_LINE_BYTES" in bad["errors"][0]["message"]
    assert files.failed.read_bytes() == b""  # nothing of it was kept to resubmit
    assert sorted(await created_by_key(empty_engine, "L")) == ["L-1", "L-2"]
    assert await created_by_key(empty_engine, "M") == ["M-1"]


async def test_the_jobs_of_a_client_are_listed_and_read_back(idle):
    one = await idle.submit(SPEC, chunks(jsonl(3)), "key:a")
    two = await idle.submit(SPEC, chunks(jsonl(3)), "key:b")
    assert [job.id for job in await idle.list(owner="key:a")] == [one.id]
    assert {job.id for job in await idle.list(owner=None)} == {one.id, two.id}
    assert await idle.get(two.id) == two
    assert await idle.get("0" * 32) is None


async def test_a_waiting_job_canceled_is_final_at_once_and_its_watchers_told(idle):
    job = await idle.submit(SPEC, chunks(jsonl(3)), "key:a")
    watching = idle.watch(job.id)
    assert (await anext(watching)).status is JobStatus.CREATED
    canceled = await idle.cancel(job.id)
    assert canceled is not None and canceled.status is JobStatus.CANCELED
    last = await anext(watching)
    assert last.final and last.status is JobStatus.CANCELED
    assert await idle.cancel("0" * 32) is None
    # What a download of it gives: every record NOT_PROCESSED, and the file to send again.
    files = JobFiles.of(idle.config.jobs_dir, job.id, job.spec.file_format)
    assert files.unprocessed.read_bytes() == jsonl(3)
    results = [orjson.loads(line) for line in files.results.read_bytes().splitlines()]
    assert [(r["line"], r["errors"][0]["code"]) for r in results] == [
        (1, "NOT_PROCESSED"), (2, "NOT_PROCESSED"), (3, "NOT_PROCESSED"),
    ]  # fmt: skip
    assert await idle.cancel(job.id) == canceled
    assert files.unprocessed.read_bytes() == jsonl(3)


@pytest.mark.parametrize(
    ("changes", "data", "options", "code", "setting"),
    [
        ({"max_file_bytes": 100}, jsonl(10), BatchOptions(), "FILE_TOO_LARGE",
         "BATCHERY_JOBS_MAX_FILE_BYTES"),
        ({"max_records": 5}, jsonl(6), BatchOptions(), "TOO_MANY_RECORDS",
         "BATCHERY_JOBS_MAX_RECORDS"),
        ({"max_atomic_records": 5}, jsonl(6), BatchOptions(atomic=True), "ATOMIC_TOO_LARGE",
         "BATCHERY_JOBS_MAX_ATOMIC_RECORDS"),
    ],
)  # fmt: skip
async def test_a_file_over_a_limit_is_refused_naming_it_and_nothing_is_kept(
    empty_engine, tmp_path, changes, data, options, code, setting
):
    service = make_service(empty_engine, tmp_path, runs=False, **changes)
    await service.start()
    try:
        spec = JobSpec("bakeries", Operation.CREATE, FileFormat.JSONL, options)
        with pytest.raises(JobRefused) as refused:
            await service.submit(spec, chunks(data, 10), "key:a")
    finally:
        await service.stop()
    assert refused.value.code == code
    assert setting in refused.value.message
    assert str(next(iter(changes.values()))) in refused.value.message
    assert list((tmp_path / "jobs").iterdir()) == []
    assert await rows.list_jobs(empty_engine, owner=None, status=None, first=10) == []


async def test_a_client_with_too_many_jobs_waiting_is_refused_before_its_upload(idle):
    for _ in range(2):
        await idle.submit(SPEC, chunks(jsonl(1)), "key:a")
    read = 0

    async def counted() -> AsyncIterator[bytes]:
        nonlocal read
        read += 1
        yield jsonl(1)

    with pytest.raises(JobRefused) as refused:
        await idle.submit(SPEC, counted(), "key:a")
    assert refused.value.code == "TOO_MANY_ACTIVE_JOBS"
    assert "BATCHERY_JOBS_MAX_ACTIVE_PER_CLIENT" in refused.value.message
    assert read == 0
    await idle.submit(SPEC, chunks(jsonl(1)), "key:b")  # another client's are its own


async def test_concurrent_submissions_of_a_client_never_pass_its_limit(idle, empty_engine):
    # Six at once, each past the early count before any row exists: the limit (2) must hold
    # where the rows are made.
    outcomes = await asyncio.gather(
        *(idle.submit(SPEC, chunks(jsonl(50), size=100), "key:a") for _ in range(6)),
        return_exceptions=True,
    )
    made = [outcome for outcome in outcomes if isinstance(outcome, Job)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, JobRefused)]
    assert (len(made), len(refused)) == (2, 4), outcomes
    assert {refusal.code for refusal in refused} == {"TOO_MANY_ACTIVE_JOBS"}
    assert await rows.count_active(empty_engine, "key:a") == 2
    # The refused ones' files are gone: only the jobs made have a directory.
    kept = {path.name for path in idle.config.jobs_dir.iterdir()}
    assert kept == {job.id for job in made}


@pytest.mark.parametrize(
    ("spec", "data", "code"),
    [
        (JobSpec("bakeries", Operation.CREATE, FileFormat.CSV), b"name,flavour\nA,x\n",
         "INVALID_FILE"),
        (JobSpec("muffins", Operation.CREATE, FileFormat.JSONL), jsonl(1), "UNKNOWN_ENTITY"),
    ],
)  # fmt: skip
async def test_a_file_that_cannot_be_read_is_refused(idle, spec, data, code):
    with pytest.raises(JobRefused) as refused:
        await idle.submit(spec, chunks(data), "key:a")
    assert refused.value.code == code
    assert await idle.list(owner=None) == []


async def test_the_stats_count_jobs_by_status_records_and_jobs_waiting(service, idle):
    done = await service.submit(SPEC, chunks(jsonl(20)), "key:a")
    await final_of(service, done.id)
    await idle.submit(SPEC, chunks(jsonl(5, prefix="W")), "key:b")
    stats = await service.stats()
    assert stats.by_status == {JobStatus.COMPLETED: 1, JobStatus.CREATED: 1}
    assert stats.records_processed == 20
    assert stats.waiting == 1


async def test_jobs_not_run_before_a_restart_are_run_by_the_reaper(empty_engine, tmp_path):
    # An API process enqueued in memory and died before running it: the message is lost.
    before = make_service(empty_engine, tmp_path, runs=False)
    await before.start()
    job = await before.submit(SPEC, chunks(jsonl(10, prefix="R")), "key:a")
    await before.stop()
    after = make_service(empty_engine, tmp_path)
    await after.start()  # its reaper's first pass takes the job
    try:
        events = await final_of(after, job.id)
    finally:
        await after.stop()
    assert events[-1].status is JobStatus.COMPLETED
    assert len(await created_by_key(empty_engine, "R")) == 10


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_shared_queue_that_does_not_answer_stops_the_start_naming_the_setting(
    empty_engine, tmp_path
):
    from app.bulk.jobs.service import QueueUnavailable

    url = f"redis://user:secret@127.0.0.1:{closed_port()}/0"
    service = make_service(empty_engine, tmp_path, runs=False, broker_url=url)
    with pytest.raises(QueueUnavailable) as refused:
        await service.start()
    assert str(refused.value).startswith("BATCHERY_JOBS_BROKER: the Redis at redis://user:***@")
    assert "secret" not in str(refused.value)
    await service.stop()


async def test_a_job_whose_message_could_not_be_sent_is_still_made(empty_engine, tmp_path):
    # Redis went away after the start: the row is the job, a worker's reaper will take it.
    url = f"redis://127.0.0.1:{closed_port()}/0"
    service = make_service(empty_engine, tmp_path, runs=False, broker_url=url)
    (tmp_path / "jobs").mkdir()
    job = await service.submit(SPEC, chunks(jsonl(2)), "key:a")
    assert (await service.get(job.id)) == job
    assert job.status is JobStatus.CREATED
    await service.stop()


@pytest.mark.skipif(not redis_available(), reason=f"no Redis at {REDIS_URL}")
async def test_with_redis_the_api_enqueues_a_worker_runs_and_acknowledges(empty_engine, tmp_path):
    """The shared queue in one process: an API-side service (runs nothing) and `serve`, the
    worker's loop, each with its own Redis connections. The job's progress reaches the API
    side over pub/sub; once the job is done its message is acknowledged, none left pending, and
    the stopped worker is no longer in the consumer group."""
    import asyncio
    import uuid

    from redis.asyncio import Redis

    from app.bulk.jobs.worker import serve

    prefix = f"test-{uuid.uuid4().hex}"
    config = make_config(tmp_path, broker_url=REDIS_URL, key_prefix=prefix)
    api = JobsService(empty_engine, config)  # enqueues, runs nothing
    worker_bus = make_bus(config)
    stop, ready = asyncio.Event(), asyncio.Event()
    await api.start()
    serving = asyncio.create_task(
        serve(
            empty_engine,
            config,
            executor(empty_engine, config, worker_bus),
            stop,
            on_ready=lambda _: ready.set(),
        )
    )
    redis = Redis.from_url(REDIS_URL)
    try:
        await asyncio.wait_for(ready.wait(), 30)
        job = await api.submit(SPEC, chunks(jsonl(3000, prefix="Q")), "key:a")
        events = await final_of(api, job.id)
        assert events[-1].status is JobStatus.COMPLETED
        # More than the row read at the start and at the end: live events came over Redis.
        assert len(events) >= 3, events
        assert len(await created_by_key(empty_engine, "Q")) == 3000
        stop.set()
        await asyncio.wait_for(serving, 30)
        pending = await redis.xpending(f"{prefix}:jobs:queue", f"{prefix}:jobs")
        assert pending["pending"] == 0
        # And the worker left the consumer group: restarts do not pile consumers up.
        assert await redis.xinfo_consumers(f"{prefix}:jobs:queue", f"{prefix}:jobs") == []
    finally:
        stop.set()
        await api.stop()
        await worker_bus.close()
        await redis.delete(f"{prefix}:jobs:queue")
        await redis.aclose()
