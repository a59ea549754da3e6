"""The jobs table summed up for metrics: jobs by status, records processed, jobs waiting.

One statement per scrape, over the (status, created_at) index; read by every API process, so the
figures are the same whichever process Prometheus asks and wherever the jobs run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.job_model import JobStatus
from app.db.jobs import jobs_table
from app.db.models import utcnow

_c = jobs_table.c


@dataclass(frozen=True, slots=True)
class JobStats:
    by_status: dict[JobStatus, int] = field(default_factory=dict)
    # Records of every job ever run that are committed: only grows (rows are never deleted, an
    # expired job keeps its counts), so `rate()` over it is records per second.
    records_processed: int = 0
    # Jobs a worker could take now: new ones, and those whose worker's lease ran out.
    waiting: int = 0


async def job_stats(engine: AsyncEngine, *, now: datetime | None = None) -> JobStats:
    now = now or utcnow()
    lease_free = or_(_c.lease_expires_at.is_(None), _c.lease_expires_at <= now)
    waiting = case(
        (
            or_(
                _c.status == JobStatus.CREATED,
                and_(_c.status.in_((JobStatus.RUNNING, JobStatus.CANCELING)), lease_free),
            ),
            1,
        ),
        else_=0,
    )
    statement = select(
        _c.status, func.count(), func.coalesce(func.sum(_c.processed), 0), func.sum(waiting)
    ).group_by(_c.status)
    async with engine.connect() as conn:
        rows = (await conn.execute(statement)).all()
    return JobStats(
        by_status={JobStatus(row[0]): int(row[1]) for row in rows},
        records_processed=sum(int(row[2]) for row in rows),
        waiting=sum(int(row[3] or 0) for row in rows),
    )
