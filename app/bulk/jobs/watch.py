"""Watching one job: its row now, then its live events, then its row at the end.

The bus carries events only while a watcher listens, and may lose some (a slow reader, a Redis
hiccup, an event published just before the subscription took hold). So a watch subscribes first,
then reads the row (anything published before is in it: a runner publishes after it commits),
then follows the events; when none comes for `poll_seconds` it reads the row again, so a lost
final event delays the end by at most that long instead of forever. The last event is always
read from the row, so it matches what `bulkJob(id)` answers. Counts never go backwards: an
event older than what was already given is skipped.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine

from app.bulk.jobs.model import Job, JobProgress
from app.bulk.jobs.progress import ProgressBus
from app.db import jobs as rows

# Without events, the row is read this often (a stalled job, a lost event).
POLL_SECONDS = 5.0


class JobNotFound(LookupError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no bulk job {job_id!r}")
        self.job_id = job_id


def progress_of(job: Job, *, now: float | None = None) -> JobProgress:
    """The job's row as an event: rate over its running time so far, ETA at that rate."""
    now = time.time() if now is None else now
    counts = job.counts
    rate = eta = None
    if job.started_at is not None:
        ended = job.finished_at.timestamp() if job.finished_at is not None else now
        elapsed = ended - job.started_at.timestamp()
        if elapsed > 0 and counts.processed:
            rate = counts.processed / elapsed
            if not job.status.final:
                eta = max(0, counts.total - counts.processed) / rate
    return JobProgress(job.id, job.status, counts, rate, eta, final=job.status.final, at=now)


def advances(last: JobProgress, event: JobProgress) -> bool:
    """Whether `event` tells a watcher who saw `last` something new, without going back."""
    if event.counts.processed < last.counts.processed:
        return False
    return event.counts != last.counts or event.status != last.status


async def watch(
    engine: AsyncEngine, bus: ProgressBus, job_id: str, *, poll_seconds: float = POLL_SECONDS
) -> AsyncIterator[JobProgress]:
    """The job's progress until its final event (JobNotFound before the first if none)."""
    async with bus.subscribe(job_id) as events:
        job = await rows.get_job(engine, job_id)
        if job is None:
            raise JobNotFound(job_id)
        last = progress_of(job)
        yield last
        while not last.final:
            event = await events.next(within=poll_seconds)
            if event is not None and not event.final:
                if advances(last, event):
                    last = event
                    yield event
                continue
            # The end, or silence: the row says where the job really is.
            job = await rows.get_job(engine, job_id)
            if job is None:  # removed under us: nothing more will come
                return
            now = progress_of(job)
            if now.final or advances(last, now):
                last = now
                yield now
