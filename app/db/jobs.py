"""Bulk jobs' rows: made, listed, claimed by a worker under a lease, checkpointed, finished.

The row is the source of truth shared by every API and worker process. A worker owns a job while
`lease_owner` names it; every write a worker makes to a running job (`checkpoint`, `finish_job`,
`renew_lease`) is fenced on `lease_owner = worker`, so a worker whose lease was taken over by
another (it stalled, it was thought dead) can no longer change the job: its write matches no row
and it must roll back. `checkpoint` and `finish_job` take the caller's connection because they
commit in the same transaction as the records they account for (exactly once, docs/jobs.md).

Claiming picks the oldest job whose lease is free or expired; on PostgreSQL with
`FOR UPDATE SKIP LOCKED`, so concurrent claimers each get a different job (or none) without
waiting on each other; on SQLite the claim is one write transaction, taken in turn.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import Row, Select, Table, case, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.job_model import (
    CLAIMABLE,
    FINAL,
    BatchOptions,
    Job,
    JobCounts,
    JobSpec,
    JobStatus,
)
from app.db.models import BulkJob, utcnow
from app.db.transactions import write_connection

jobs_table = cast(Table, BulkJob.__table__)
_c = jobs_table.c
# Jobs that count against a client's limit of jobs at once.
ACTIVE = frozenset({JobStatus.CREATED, JobStatus.RUNNING, JobStatus.CANCELING})
# Final jobs whose files are still kept (EXPIRED ones have none left).
EXPIRABLE = FINAL - {JobStatus.EXPIRED}
MAX_LIST = 1000


class TooManyActive(Exception):
    """`create_job` refused: the owner already has `active` unfinished jobs (the limit or more)."""

    def __init__(self, active: int) -> None:
        super().__init__(f"{active} jobs not finished")
        self.active = active


# The first key of PostgreSQL's two-key advisory locks taken here: "BJ", bulk jobs.
ADVISORY_CLASS = 0x424A


def new_job_id() -> str:
    """A job id (32 hex characters, unguessable: a job's files are served by id alone)."""
    return secrets.token_hex(16)


def _options_json(options: BatchOptions) -> str:
    return orjson.dumps(asdict(options)).decode()


def _options(text: str) -> BatchOptions:
    known = {name: bool(value) for name, value in orjson.loads(text).items()}
    return BatchOptions(**{k: v for k, v in known.items() if k in BatchOptions.__slots__})


def _job(row: Row[Any]) -> Job:
    spec = JobSpec(row.entity, row.operation, row.file_format, _options(row.options))
    counts = JobCounts(row.total, row.processed, row.succeeded, row.failed)
    return Job(
        id=row.id,
        owner=row.owner,
        spec=spec,
        status=row.status,
        counts=counts,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        error_code=row.error_code,
        error_message=row.error_message,
        expires_at=row.expires_at,
        attempts=row.attempts,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        results_bytes=row.results_bytes,
        failed_bytes=row.failed_bytes,
    )


async def create_job(
    engine: AsyncEngine,
    spec: JobSpec,
    owner: str,
    total: int,
    expires_at: datetime | None,
    *,
    job_id: str | None = None,
    max_active: int | None = None,
) -> Job:
    """A CREATED job of `total` records. `job_id` lets the caller store the file first, in the
    job's own directory, and make the row only once the file is accepted.

    `max_active`: TooManyActive, and nothing made, when the owner already has that many jobs
    not finished. The count and the insert are one transaction that concurrent submissions of
    the owner take in turn (SQLite: the write lock, taken at BEGIN; PostgreSQL: an advisory
    lock on the owner, held to the commit), so N at once cannot all pass a count of N - 1."""
    values: dict[str, Any] = {
        "id": job_id or new_job_id(),
        "owner": owner,
        "entity": spec.entity,
        "operation": spec.operation,
        "file_format": spec.file_format,
        "options": _options_json(spec.options),
        "status": JobStatus.CREATED,
        "total": total,
        "processed": 0,
        "succeeded": 0,
        "failed": 0,
        "created_at": utcnow(),
        "expires_at": expires_at,
        "attempts": 0,
        "results_bytes": 0,
        "failed_bytes": 0,
    }
    async with write_connection(engine) as conn, conn.begin():
        if max_active is not None:
            if conn.dialect.name == "postgresql":
                owner_key = func.hashtext(literal(owner))
                await conn.execute(select(func.pg_advisory_xact_lock(ADVISORY_CLASS, owner_key)))
            active: int = (await conn.execute(_count_active(owner))).scalar_one()
            if active >= max_active:
                raise TooManyActive(active)
        row = (await conn.execute(jobs_table.insert().values(**values).returning(*_c))).one()
    return _job(row)


async def get_job(engine: AsyncEngine, job_id: str) -> Job | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(*_c).where(_c.id == job_id))).first()
    return _job(row) if row is not None else None


async def list_jobs(
    engine: AsyncEngine, *, owner: str | None, status: JobStatus | None, first: int
) -> list[Job]:
    """Newest first; `owner=None` lists everyone's (admins). At most MAX_LIST."""
    statement = select(*_c).order_by(_c.created_at.desc(), _c.id.desc())
    if owner is not None:
        statement = statement.where(_c.owner == owner)
    if status is not None:
        statement = statement.where(_c.status == status)
    statement = statement.limit(max(0, min(first, MAX_LIST)))
    async with engine.connect() as conn:
        return [_job(row) for row in (await conn.execute(statement)).all()]


async def count_active(engine: AsyncEngine, owner: str) -> int:
    """The owner's jobs not yet finished (waiting, running, or being canceled)."""
    async with engine.connect() as conn:
        count: int = (await conn.execute(_count_active(owner))).scalar_one()
    return count


def _count_active(owner: str) -> Select[int]:
    return select(func.count()).where(_c.owner == owner, _c.status.in_(ACTIVE))


async def claim_job(
    engine: AsyncEngine,
    worker: str,
    lease_seconds: float,
    job_id: str | None = None,
    *,
    now: datetime | None = None,
) -> Job | None:
    """Take a job for `worker` until now + lease_seconds: `job_id`, or else the oldest claimable
    job whose lease is free or expired. CREATED becomes RUNNING; a RUNNING or CANCELING job is
    resumed from its checkpoint. None when there is nothing to take (or `job_id` is taken)."""
    now = now or utcnow()
    free = or_(_c.lease_expires_at.is_(None), _c.lease_expires_at <= now)
    query = select(_c.id).where(_c.status.in_(CLAIMABLE), free)
    if job_id is not None:
        query = query.where(_c.id == job_id)
    # SKIP LOCKED: a job another claimer (or a committing worker) holds is passed over, not
    # waited for. SQLite ignores the clause; there the transaction holds the write lock.
    query = query.order_by(_c.created_at, _c.id).limit(1).with_for_update(skip_locked=True)
    running = literal(JobStatus.RUNNING, _c.status.type)
    claim = (
        update(jobs_table)
        .values(
            status=case((_c.status == JobStatus.CREATED, running), else_=_c.status),
            lease_owner=worker,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=_c.attempts + 1,
            started_at=case((_c.started_at.is_(None), now), else_=_c.started_at),
        )
        .returning(*_c)
    )
    async with write_connection(engine) as conn, conn.begin():
        found = (await conn.execute(query)).scalar_one_or_none()
        if found is None:
            return None
        row = (await conn.execute(claim.where(_c.id == found))).one()
    return _job(row)


async def checkpoint(
    conn: AsyncConnection,
    job_id: str,
    worker: str,
    counts: JobCounts,
    *,
    results_bytes: int,
    failed_bytes: int,
    lease_seconds: float,
    now: datetime | None = None,
) -> bool:
    """Record, in the caller's transaction, that `counts.processed` records are committed and the
    result files have these sizes; renew the lease. False (roll back!) when the worker no longer
    owns the job or it is no longer RUNNING (a cancel was asked): nothing was changed."""
    now = now or utcnow()
    statement = (
        update(jobs_table)
        .where(_c.id == job_id, _c.lease_owner == worker, _c.status == JobStatus.RUNNING)
        .values(
            processed=counts.processed,
            succeeded=counts.succeeded,
            failed=counts.failed,
            results_bytes=results_bytes,
            failed_bytes=failed_bytes,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
        )
    )
    return (await conn.execute(statement)).rowcount == 1


async def lock_job(conn: AsyncConnection, job_id: str, worker: str) -> JobStatus | None:
    """Hold the job's row until the caller's transaction ends, if `worker` still owns it (its
    status then; None otherwise): what a worker does before writing files it then accounts for
    in `finish_job`, so no other worker can take the job over meanwhile."""
    statement = (
        select(_c.status)
        .where(_c.id == job_id, _c.lease_owner == worker, _c.status.in_(CLAIMABLE))
        .with_for_update()
    )
    status: JobStatus | None = (await conn.execute(statement)).scalar_one_or_none()
    return status


async def renew_lease(
    engine: AsyncEngine, job_id: str, worker: str, lease_seconds: float
) -> JobStatus | None:
    """Extend the worker's lease; the job's status, or None when the worker lost it."""
    statement = (
        update(jobs_table)
        .where(_c.id == job_id, _c.lease_owner == worker, _c.status.in_(CLAIMABLE))
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
        .returning(_c.status)
    )
    async with write_connection(engine) as conn, conn.begin():
        status: JobStatus | None = (await conn.execute(statement)).scalar_one_or_none()
    return status


async def finish_job(
    conn: AsyncConnection,
    job_id: str,
    worker: str,
    status: JobStatus,
    counts: JobCounts,
    *,
    results_bytes: int,
    failed_bytes: int,
    error_code: str | None = None,
    error_message: str | None = None,
    expires_at: datetime | None = None,
) -> Job | None:
    """Make the job final (COMPLETED, CANCELED or FAILED), in the caller's transaction, fenced
    like `checkpoint`; `expires_at` None keeps the one set at creation. None when the worker no
    longer owns the job (roll back)."""
    assert status in EXPIRABLE, status
    values: dict[str, Any] = {
        "status": status,
        "processed": counts.processed,
        "succeeded": counts.succeeded,
        "failed": counts.failed,
        "results_bytes": results_bytes,
        "failed_bytes": failed_bytes,
        "error_code": error_code,
        "error_message": error_message,
        "finished_at": utcnow(),
        "lease_expires_at": None,
    }
    if expires_at is not None:
        values["expires_at"] = expires_at
    statement = (
        update(jobs_table)
        .where(_c.id == job_id, _c.lease_owner == worker, _c.status.in_(CLAIMABLE))
        .values(**values)
        .returning(*_c)
    )
    row = (await conn.execute(statement)).first()
    return _job(row) if row is not None else None


async def request_cancel(engine: AsyncEngine, job_id: str) -> Job | None:
    """Ask a job to stop: a CREATED job is CANCELED at once, a RUNNING one becomes CANCELING (its
    worker finishes it as CANCELED between chunks). A final job is left as it is. The job as it
    is now; None when there is no such job."""
    created = _c.status == JobStatus.CREATED
    canceled = literal(JobStatus.CANCELED, _c.status.type)
    canceling = literal(JobStatus.CANCELING, _c.status.type)
    # One statement: a claim committing meanwhile (CREATED -> RUNNING) is seen by the CASE.
    statement = (
        update(jobs_table)
        .where(_c.id == job_id, _c.status.in_((JobStatus.CREATED, JobStatus.RUNNING)))
        .values(
            status=case((created, canceled), else_=canceling),
            finished_at=case((created, utcnow()), else_=_c.finished_at),
        )
    )
    async with write_connection(engine) as conn, conn.begin():
        await conn.execute(statement)
        row = (await conn.execute(select(*_c).where(_c.id == job_id))).first()
    return _job(row) if row is not None else None


async def expired_jobs(
    engine: AsyncEngine, *, now: datetime | None = None, first: int = 100
) -> list[Job]:
    """Final jobs whose `expires_at` has passed and whose files are still there, oldest first."""
    statement = (
        select(*_c)
        .where(_c.status.in_(EXPIRABLE), _c.expires_at <= (now or utcnow()))
        .order_by(_c.expires_at, _c.id)
        .limit(first)
    )
    async with engine.connect() as conn:
        return [_job(row) for row in (await conn.execute(statement)).all()]


async def mark_expired(engine: AsyncEngine, job_id: str) -> bool:
    """EXPIRED (after its files were removed); False when it was not a final job."""
    statement = (
        update(jobs_table)
        .where(_c.id == job_id, _c.status.in_(EXPIRABLE))
        .values(status=JobStatus.EXPIRED)
    )
    async with write_connection(engine) as conn, conn.begin():
        return (await conn.execute(statement)).rowcount == 1


async def release_lease(
    engine: AsyncEngine,
    job_id: str,
    worker: str,
    *,
    error_code: str | None = None,
    error_message: str | None = None,
    resume_after: float = 0.0,
) -> bool:
    """Give a job back: its lease ends now, so the next claimer resumes it from its checkpoint
    instead of waiting a lease out. False when the worker did not hold it (any more).

    Without an error it is a clean hand-back (a worker stopping, SIGTERM): the claim it ends is
    not counted as an attempt, so restarting workers never fails a job with TOO_MANY_ATTEMPTS.
    With one (a database outage stopped the run) the attempt counts, and `error_code` /
    `error_message` tell whoever reads the job meanwhile why it waits; its end clears them.
    `resume_after`: seconds before another worker may claim it (an outage may last a while)."""
    values: dict[str, Any] = {"lease_expires_at": utcnow() + timedelta(seconds=resume_after)}
    if error_code is None:
        # claim_job counted this claim; a clean hand-back takes it back.
        values["attempts"] = case((_c.attempts > 0, _c.attempts - 1), else_=0)
    else:
        values |= {"error_code": error_code, "error_message": error_message}
    statement = (
        update(jobs_table)
        .where(_c.id == job_id, _c.lease_owner == worker, _c.status.in_(CLAIMABLE))
        .values(**values)
    )
    async with write_connection(engine) as conn, conn.begin():
        return (await conn.execute(statement)).rowcount == 1
