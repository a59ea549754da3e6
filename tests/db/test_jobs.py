"""Bulk jobs' rows: claims under leases (never one job to two workers), fenced checkpoints and
finishes, cancel requests, expiry. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bulk.jobs.model import FileFormat, JobCounts, JobSpec, JobStatus
from app.bulk.model import BatchOptions, Operation
from app.db import jobs
from app.db.models import utcnow
from app.db.statements import count_statements
from app.db.transactions import write_connection

SPEC = JobSpec("bakeries", Operation.UPSERT, FileFormat.CSV, BatchOptions(atomic=True))
LEASE = 60.0


async def make(engine: AsyncEngine, owner: str = "key:a", total: int = 10) -> jobs.Job:
    return await jobs.create_job(engine, SPEC, owner, total, utcnow() + timedelta(days=1))


def later(seconds: float = 3600) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


async def test_a_created_job_reads_back_as_it_was_made(empty_engine):
    made = await make(empty_engine, total=7)
    assert len(made.id) == 32
    assert (made.status, made.counts, made.attempts) == (JobStatus.CREATED, JobCounts(7), 0)
    assert made.spec == SPEC
    assert await jobs.get_job(empty_engine, made.id) == made
    assert await jobs.get_job(empty_engine, "0" * 32) is None


async def test_jobs_are_listed_newest_first_by_owner_and_status(empty_engine):
    first = await make(empty_engine, "key:a")
    second = await make(empty_engine, "key:a")
    other = await make(empty_engine, "key:b")
    await jobs.request_cancel(empty_engine, first.id)

    mine = await jobs.list_jobs(empty_engine, owner="key:a", status=None, first=10)
    assert [job.id for job in mine] == [second.id, first.id]
    everyone = await jobs.list_jobs(empty_engine, owner=None, status=None, first=2)
    assert [job.id for job in everyone] == [other.id, second.id]
    canceled = await jobs.list_jobs(empty_engine, owner=None, status=JobStatus.CANCELED, first=10)
    assert [job.id for job in canceled] == [first.id]
    assert await jobs.count_active(empty_engine, "key:a") == 1
    assert await jobs.count_active(empty_engine, "key:c") == 0


async def test_a_claim_takes_the_oldest_job_and_holds_it_until_the_lease_expires(empty_engine):
    oldest = await make(empty_engine)
    newer = await make(empty_engine)

    claimed = await jobs.claim_job(empty_engine, "w1", LEASE)
    assert claimed is not None and claimed.id == oldest.id
    assert (claimed.status, claimed.lease_owner, claimed.attempts) == (JobStatus.RUNNING, "w1", 1)
    assert claimed.started_at is not None and claimed.lease_expires_at is not None
    # The lease holds: another worker gets the next job, then nothing.
    second = await jobs.claim_job(empty_engine, "w2", LEASE)
    assert second is not None and second.id == newer.id
    assert await jobs.claim_job(empty_engine, "w3", LEASE) is None
    assert await jobs.claim_job(empty_engine, "w3", LEASE, oldest.id) is None

    # Once the lease has run out, it is taken again (and resumed: same start, one more attempt).
    again = await jobs.claim_job(empty_engine, "w3", LEASE, oldest.id, now=later())
    assert again is not None and again.lease_owner == "w3"
    assert (again.status, again.attempts, again.started_at) == (
        JobStatus.RUNNING,
        2,
        claimed.started_at,
    )


async def test_concurrent_claimers_never_get_the_same_job(empty_engine):
    made = {(await make(empty_engine)).id for _ in range(6)}
    claims = await asyncio.gather(
        *(jobs.claim_job(empty_engine, f"w{n}", LEASE) for n in range(15))
    )
    taken = [job for job in claims if job is not None]
    assert sorted(job.id for job in taken) == sorted(made)
    rows = {job.id: job.lease_owner for job in taken}
    for job_id, worker in rows.items():
        stored = await jobs.get_job(empty_engine, job_id)
        assert stored is not None and stored.lease_owner == worker


async def test_a_claim_skips_a_job_whose_row_another_transaction_holds(empty_engine, backend):
    if backend != "postgresql":
        pytest.skip("SQLite has no row locks: its claims take the database's write lock in turn")
    held = await make(empty_engine)
    free = await make(empty_engine)
    async with empty_engine.connect() as conn, conn.begin():
        table = jobs.jobs_table
        await conn.execute(select(table.c.id).where(table.c.id == held.id).with_for_update())
        # Neither waits for the lock: the held job is passed over, and asked by id, not given.
        async with asyncio.timeout(5):
            claimed = await jobs.claim_job(empty_engine, "w1", LEASE)
            by_id = await jobs.claim_job(empty_engine, "w2", LEASE, held.id)
    assert claimed is not None and claimed.id == free.id
    assert by_id is None


async def test_a_checkpoint_is_one_statement_and_renews_the_lease(empty_engine):
    job = await make(empty_engine)
    claimed = await jobs.claim_job(empty_engine, "w1", LEASE)
    assert claimed is not None
    counts = JobCounts(10, 4, 3, 1)
    with count_statements(empty_engine) as log:
        async with write_connection(empty_engine) as conn, conn.begin():
            kept = await jobs.checkpoint(
                conn, job.id, "w1", counts, results_bytes=120, failed_bytes=30, lease_seconds=600
            )
    assert kept and log.count == 1
    stored = await jobs.get_job(empty_engine, job.id)
    assert stored is not None
    assert (stored.counts, stored.results_bytes, stored.failed_bytes) == (counts, 120, 30)
    assert stored.lease_expires_at is not None and claimed.lease_expires_at is not None
    assert stored.lease_expires_at > claimed.lease_expires_at


async def test_a_checkpoint_fenced_by_another_lease_owner_is_refused(empty_engine):
    job = await make(empty_engine)
    await jobs.claim_job(empty_engine, "w1", LEASE)
    stolen = await jobs.claim_job(empty_engine, "w2", LEASE, job.id, now=later())
    assert stolen is not None

    async with write_connection(empty_engine) as conn, conn.begin():
        kept = await jobs.checkpoint(
            conn, job.id, "w1", JobCounts(10, 5, 5), results_bytes=1, failed_bytes=0,
            lease_seconds=1,
        )  # fmt: skip
        finished = await jobs.finish_job(
            conn, job.id, "w1", JobStatus.COMPLETED, JobCounts(10, 10, 10),
            results_bytes=1, failed_bytes=0,
        )  # fmt: skip
    assert not kept and finished is None
    assert await jobs.get_job(empty_engine, job.id) == stolen


async def test_cancel_stops_a_created_job_at_once_and_asks_a_running_one(empty_engine):
    waiting = await make(empty_engine)
    running = await make(empty_engine)
    await jobs.claim_job(empty_engine, "w1", LEASE, running.id)

    canceled = await jobs.request_cancel(empty_engine, waiting.id)
    assert canceled is not None and canceled.status is JobStatus.CANCELED
    assert canceled.finished_at is not None
    canceling = await jobs.request_cancel(empty_engine, running.id)
    assert canceling is not None and canceling.status is JobStatus.CANCELING
    assert canceling.finished_at is None
    assert await jobs.request_cancel(empty_engine, "f" * 32) is None

    # The worker's next checkpoint is refused (it rolls its chunk back and ends the job);
    # a CANCELING job is still its to finish.
    async with write_connection(empty_engine) as conn, conn.begin():
        assert not await jobs.checkpoint(
            conn, running.id, "w1", JobCounts(10, 3), results_bytes=0, failed_bytes=0,
            lease_seconds=LEASE,
        )  # fmt: skip
        done = await jobs.finish_job(
            conn, running.id, "w1", JobStatus.CANCELED, JobCounts(10, 0),
            results_bytes=0, failed_bytes=0,
        )  # fmt: skip
    assert done is not None and done.status is JobStatus.CANCELED
    # A final job stays as it is.
    assert (await jobs.request_cancel(empty_engine, running.id)) == done


async def test_a_lease_can_be_renewed_only_by_its_owner(empty_engine):
    job = await make(empty_engine)
    await jobs.claim_job(empty_engine, "w1", LEASE)
    assert await jobs.renew_lease(empty_engine, job.id, "w1", LEASE) is JobStatus.RUNNING
    assert await jobs.renew_lease(empty_engine, job.id, "w2", LEASE) is None
    await jobs.request_cancel(empty_engine, job.id)
    assert await jobs.renew_lease(empty_engine, job.id, "w1", LEASE) is JobStatus.CANCELING


async def test_finished_jobs_expire_after_their_time_and_only_once(empty_engine):
    done = await make(empty_engine)
    await make(empty_engine)  # still waiting: never expired, whatever its date
    await jobs.claim_job(empty_engine, "w1", LEASE, done.id)
    async with write_connection(empty_engine) as conn, conn.begin():
        await jobs.finish_job(
            conn, done.id, "w1", JobStatus.COMPLETED, JobCounts(10, 10, 10),
            results_bytes=5, failed_bytes=0, expires_at=utcnow() + timedelta(hours=2),
        )  # fmt: skip

    assert await jobs.expired_jobs(empty_engine, now=later(3600)) == []
    due = await jobs.expired_jobs(empty_engine, now=later(3 * 3600))
    assert [job.id for job in due] == [done.id]
    assert await jobs.mark_expired(empty_engine, done.id)
    assert not await jobs.mark_expired(empty_engine, done.id)
    assert await jobs.expired_jobs(empty_engine, now=later(3 * 3600)) == []
    expired = await jobs.get_job(empty_engine, done.id)
    assert expired is not None and expired.status is JobStatus.EXPIRED


async def test_a_clean_hand_back_gives_the_attempt_back_and_a_faulted_one_says_why(empty_engine):
    job = await make(empty_engine)
    assert await jobs.claim_job(empty_engine, "w1", LEASE, job.id) is not None
    assert await jobs.release_lease(empty_engine, job.id, "w1")
    clean = await jobs.claim_job(empty_engine, "w2", LEASE, job.id)
    assert clean is not None and clean.attempts == 1
    # Only its holder can give it back.
    assert not await jobs.release_lease(empty_engine, job.id, "w1")

    told = "attempt 1 of 5 stopped: the database was unavailable"
    assert await jobs.release_lease(
        empty_engine, job.id, "w2", error_code="DATABASE_UNAVAILABLE", error_message=told,
        resume_after=30,
    )  # fmt: skip
    waiting = await jobs.get_job(empty_engine, job.id)
    assert waiting is not None and waiting.status is JobStatus.RUNNING
    assert (waiting.attempts, waiting.error_code, waiting.error_message) == (
        1, "DATABASE_UNAVAILABLE", told,
    )  # fmt: skip
    assert await jobs.claim_job(empty_engine, "w3", LEASE, job.id) is None  # not before 30 s
    again = await jobs.claim_job(empty_engine, "w3", LEASE, job.id, now=later(31))
    assert again is not None and again.attempts == 2
