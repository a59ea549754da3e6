"""What the runner's tests share: a job made from lines, claimed, run, and its files read back."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bulk.jobs.files import JobFiles
from app.bulk.jobs.model import FileFormat, Job, JobProgress, JobSpec
from app.bulk.jobs.runner import JobRunner, RunnerConfig
from app.bulk.model import BatchOptions, Operation
from app.db import jobs
from app.db.models import utcnow
from app.db.reads import bakeries

LEASE = 60.0


def fixed(size: int, **changes: Any) -> RunnerConfig:
    """Chunks of exactly `size` records (tests can say which chunk did what), an event after
    each chunk."""
    values: dict[str, Any] = {"progress_interval_seconds": 0, "fsync": False} | changes
    return RunnerConfig(min_chunk=size, max_chunk=size, **values)


def jsonl(records: Sequence[dict[str, Any] | str]) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def bakery(n: int, prefix: str = "J") -> dict[str, Any]:
    return {"name": f"Bakery {n}", "region": "CENTRAL", "externalId": f"{prefix}-{n}"}


async def submit(
    engine: AsyncEngine,
    jobs_dir: Path,
    text: str,
    *,
    operation: Operation = Operation.CREATE,
    file_format: FileFormat = FileFormat.JSONL,
    entity: str = "bakeries",
    options: BatchOptions | None = None,
    total: int | None = None,
) -> Job:
    """A CREATED job whose input holds `text` (as `JobsService.submit` leaves one)."""
    spec = JobSpec(entity, operation, file_format, options or BatchOptions())
    job_id = jobs.new_job_id()
    files = JobFiles.of(jobs_dir, job_id, file_format)
    files.directory.mkdir(parents=True)
    files.input.write_text(text, encoding="utf-8")
    if total is None:
        total = sum(1 for line in text.splitlines() if line.strip())
        total -= file_format is FileFormat.CSV  # the header
    expires = utcnow() + timedelta(days=1)
    return await jobs.create_job(engine, spec, "key:test", total, expires, job_id=job_id)


async def claim(engine: AsyncEngine, job: Job, worker: str, *, later: bool = False) -> Job:
    now = utcnow() + timedelta(seconds=LEASE * 2) if later else None
    claimed = await jobs.claim_job(engine, worker, LEASE, job.id, now=now)
    assert claimed is not None, f"{worker} could not claim {job.id}"
    return claimed


@dataclass
class Events:
    seen: list[JobProgress] = field(default_factory=list)

    async def __call__(self, event: JobProgress) -> None:
        self.seen.append(event)


async def run_job(
    engine: AsyncEngine, jobs_dir: Path, job: Job, config: RunnerConfig, worker: str = "w1"
) -> tuple[Job | None, Events]:
    events = Events()
    claimed = await claim(engine, job, worker)
    final = await JobRunner(engine, jobs_dir, worker, config, progress=events).run(claimed)
    return final, events


def results(jobs_dir: Path, job: Job) -> list[dict[str, Any]]:
    path = JobFiles.of(jobs_dir, job.id, job.spec.file_format).results
    return [json.loads(line) for line in path.read_text().splitlines()]


def file_of(jobs_dir: Path, job: Job, name: str) -> str:
    files = JobFiles.of(jobs_dir, job.id, job.spec.file_format)
    path: Path = getattr(files, name)
    return path.read_text()


async def keys_with_prefix(engine: AsyncEngine, prefix: str) -> dict[str, int]:
    """externalId -> how many bakeries hold it (a unique column: a second write would fail,
    so a record written twice shows as a DUPLICATE failure, and one lost as a missing key)."""
    column = bakeries.c.external_id
    statement = select(column, func.count()).where(column.like(f"{prefix}-%")).group_by(column)
    async with engine.connect() as conn:
        return {key: n for key, n in (await conn.execute(statement)).all()}
