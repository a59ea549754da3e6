"""Watching a job: the row first, live events in order, never backwards, the final event read
from the row, and an end even when the final event is lost. On SQLite and PostgreSQL, with the
in-process bus (the Redis bus carries the same events: test_progress.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bulk.jobs.model import FileFormat, Job, JobCounts, JobProgress, JobSpec, JobStatus
from app.bulk.jobs.progress import MemoryBus
from app.bulk.jobs.watch import JobNotFound, advances, progress_of, watch
from app.bulk.model import Operation
from app.db import jobs as rows
from app.db.models import utcnow
from app.db.transactions import write_connection

SPEC = JobSpec("bakeries", Operation.CREATE, FileFormat.JSONL)


async def running(engine: AsyncEngine, total: int = 100) -> Job:
    job = await rows.create_job(engine, SPEC, "key:a", total, utcnow() + timedelta(days=1))
    claimed = await rows.claim_job(engine, "w", 3600, job.id)
    assert claimed is not None
    return claimed


async def commit(engine: AsyncEngine, job: Job, processed: int) -> None:
    counts = JobCounts(job.counts.total, processed, processed, 0)
    async with write_connection(engine) as conn, conn.begin():
        assert await rows.checkpoint(
            conn, job.id, "w", counts, results_bytes=0, failed_bytes=0, lease_seconds=3600
        )


async def finish(engine: AsyncEngine, job: Job) -> Job:
    counts = JobCounts(job.counts.total, job.counts.total, job.counts.total, 0)
    async with write_connection(engine) as conn, conn.begin():
        done = await rows.finish_job(
            conn, job.id, "w", JobStatus.COMPLETED, counts, results_bytes=0, failed_bytes=0
        )
    assert done is not None
    return done


def live(job: Job, processed: int) -> JobProgress:
    counts = JobCounts(job.counts.total, processed, processed, 0)
    return JobProgress(job.id, JobStatus.RUNNING, counts, rate=1.0, eta_seconds=1.0)


async def test_a_watch_gives_the_row_then_live_events_then_the_final_row(empty_engine):
    bus = MemoryBus()
    job = await running(empty_engine)
    await commit(empty_engine, job, 10)
    watching = watch(empty_engine, bus, job.id)
    first = await anext(watching)
    assert (first.status, first.counts.processed, first.final) == (JobStatus.RUNNING, 10, False)
    # The runner commits, then publishes.
    await commit(empty_engine, job, 50)
    await bus.publish(live(job, 50))
    second = await anext(watching)
    assert second.counts.processed == 50
    done = await finish(empty_engine, job)
    await bus.publish(progress_of(done))
    last = await anext(watching)
    assert last == progress_of(done, now=last.at)
    assert last.final and last.status is JobStatus.COMPLETED
    with pytest.raises(StopAsyncIteration):
        await anext(watching)


async def test_events_older_than_what_was_given_are_skipped(empty_engine):
    bus = MemoryBus()
    job = await running(empty_engine)
    await commit(empty_engine, job, 40)
    watching = watch(empty_engine, bus, job.id)
    assert (await anext(watching)).counts.processed == 40
    await bus.publish(live(job, 30))  # published before the row was read: stale
    await bus.publish(live(job, 40))  # nothing new
    await bus.publish(live(job, 60))
    assert (await anext(watching)).counts.processed == 60
    await watching.aclose()


async def test_a_lost_final_event_ends_the_watch_from_the_row(empty_engine):
    bus = MemoryBus()
    job = await running(empty_engine)
    watching = watch(empty_engine, bus, job.id, poll_seconds=0.05)
    await anext(watching)
    await finish(empty_engine, job)  # and no event published
    last = await asyncio.wait_for(anext(watching), 10)
    assert last.final and last.counts.processed == 100


async def test_a_finished_job_is_one_final_event(empty_engine):
    bus = MemoryBus()
    job = await finish(empty_engine, await running(empty_engine))
    events = [event async for event in watch(empty_engine, bus, job.id)]
    assert [(e.final, e.status) for e in events] == [(True, JobStatus.COMPLETED)]


async def test_watching_no_such_job_raises_at_the_first_step(empty_engine):
    with pytest.raises(JobNotFound, match="no bulk job"):
        await anext(watch(empty_engine, MemoryBus(), "0" * 32))


def test_rate_and_eta_come_from_the_running_time():
    started = datetime(2026, 1, 1, tzinfo=UTC)
    job = Job(
        "a" * 32,
        "key:a",
        SPEC,
        JobStatus.RUNNING,
        JobCounts(100, 20, 20, 0),
        created_at=started,
        started_at=started,
    )
    event = progress_of(job, now=started.timestamp() + 10)
    assert (event.rate, event.eta_seconds, event.final) == (2.0, 40.0, False)


def test_progress_never_goes_back_and_a_status_change_is_news():
    job_id = "a" * 32
    at = JobProgress(job_id, JobStatus.RUNNING, JobCounts(10, 5, 5, 0))
    assert not advances(at, at)
    assert not advances(at, JobProgress(job_id, JobStatus.RUNNING, JobCounts(10, 4, 4, 0)))
    assert advances(at, JobProgress(job_id, JobStatus.CANCELING, JobCounts(10, 5, 5, 0)))
    assert advances(at, JobProgress(job_id, JobStatus.RUNNING, JobCounts(10, 6, 6, 0)))


async def test_a_watch_without_redis_follows_the_row_to_the_end(empty_engine):
    import socket

    from app.bulk.jobs.progress import RedisBus

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bus = RedisBus(f"redis://127.0.0.1:{port}/0", "test")  # nothing listens there
    job = await running(empty_engine)
    watching = watch(empty_engine, bus, job.id, poll_seconds=0.05)
    assert (await anext(watching)).status is JobStatus.RUNNING
    await finish(empty_engine, job)
    last = await asyncio.wait_for(anext(watching), 10)
    assert last.final and last.status is JobStatus.COMPLETED
    await watching.aclose()
    await bus.close()
