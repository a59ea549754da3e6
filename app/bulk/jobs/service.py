"""`JobsService`: what GraphQL, REST and the CLI ask of bulk jobs, whatever runs them.

`submit` streams the client's file into the job's directory (never whole in memory, refused
past BATCHERY_JOBS_MAX_FILE_BYTES while it streams), counts its records, checks the limits, makes
the job's row and enqueues it; `cancel`, `get`, `list` and `watch` read and change the row and
follow its progress. Refusals are `JobRefused` with a code and a message naming the setting and
its value, for the API to answer 4xx with.

A submission may carry an `Idempotency-Key` (`Once`, app/bulk/idempotency.py): its meaning is
the job's spec and the file's SHA-256, known once the file is stored; a retry with the same key
and the same file gets the job made the first time (its stored file thrown away), the same key
with another file or spec is refused (IDEMPOTENCY_KEY_REUSED), as bulk requests are.

Where the jobs run depends on the configuration: embedded (no broker URL), this service also
holds a `JobWorker` that runs them in this process; with Redis it only enqueues and `batchery
worker` processes (app/bulk/jobs/worker_process.py) run them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine
from taskiq import AsyncBroker
from taskiq.exceptions import SendTaskError

from app.bulk.entities import ENTITIES
from app.bulk.idempotency import IdempotencyError, IdempotencyStore, check_key, fingerprint
from app.bulk.jobs import broker as brokers
from app.bulk.jobs import sources
from app.bulk.jobs.broker import QueueUnavailable
from app.bulk.jobs.config import SETTING, JobsConfig
from app.bulk.jobs.files import FileTooLarge, JobFiles, store_input
from app.bulk.jobs.model import Job, JobProgress, JobSpec, JobStatus
from app.bulk.jobs.progress import MemoryBus, ProgressBus, RedisBus
from app.bulk.jobs.records import EXTRA_COLUMNS
from app.bulk.jobs.runner import report_never_run
from app.bulk.jobs.watch import JobNotFound, progress_of, watch
from app.bulk.jobs.worker import Execute, JobWorker
from app.db import jobs as rows
from app.db.job_stats import JobStats, job_stats
from app.db.models import utcnow
from app.db.statements import uncounted

logger = logging.getLogger("batchery.jobs")

__all__ = ["JobNotFound", "JobRefused", "JobsService", "Once", "QueueUnavailable", "Submitted"]


class JobRefused(ValueError):
    """A job that will not be made, and why: `code` for machines, the message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# Codes of refusals (the API maps them onto HTTP statuses: 413, 422, 429, 400).
FILE_TOO_LARGE = "FILE_TOO_LARGE"
TOO_MANY_RECORDS = "TOO_MANY_RECORDS"
ATOMIC_TOO_LARGE = "ATOMIC_TOO_LARGE"
TOO_MANY_ACTIVE_JOBS = "TOO_MANY_ACTIVE_JOBS"
INVALID_FILE = "INVALID_FILE"
UNKNOWN_ENTITY = "UNKNOWN_ENTITY"


@dataclass(frozen=True, slots=True)
class Once:
    """An Idempotency-Key on a submission: the key, where it is used (its caller and transport:
    one caller's keys are never another's), and the store that remembers it."""

    store: IdempotencyStore
    key: str
    scope: str


@dataclass(frozen=True, slots=True)
class Submitted:
    job: Job
    # A retry under its Idempotency-Key: the job made the first time, nothing new made.
    replayed: bool = False


def make_bus(config: JobsConfig) -> ProgressBus:
    if config.embedded:
        return MemoryBus()
    return RedisBus(config.broker_url, config.key_prefix)


class JobsService:
    def __init__(
        self,
        engine: AsyncEngine,
        config: JobsConfig,
        *,
        execute: Execute | None = None,
        bus: ProgressBus | None = None,
    ) -> None:
        """`execute(job, worker)` runs a claimed job (the runner): given, and embedded, this
        process runs jobs; otherwise it only enqueues them."""
        self.engine = engine
        self.config = config
        self.bus = bus or make_bus(config)
        self.broker: AsyncBroker = brokers.make_broker(config)
        self.worker: JobWorker | None = None
        if execute is not None and config.embedded:
            self.worker = JobWorker(engine, config, execute)
            brokers.register(self.broker, self.worker.run_job)
        else:
            # An API process with a shared queue kicks tasks it never runs.
            brokers.register(self.broker, _not_here)
        self._started = False

    async def start(self) -> None:
        """Ready the jobs directory and the queue. QueueUnavailable (naming the setting) when
        the shared queue does not answer."""
        await asyncio.to_thread(self.config.jobs_dir.mkdir, parents=True, exist_ok=True)
        await brokers.start(self.broker, self.config)
        if self.worker is not None:
            self.worker.start()
        self._started = True

    async def stop(self) -> None:
        if self.worker is not None:
            await self.worker.stop()
        if self._started:
            await self.broker.shutdown()
        await self.bus.close()

    # Submitting.

    async def submit(self, spec: JobSpec, source: AsyncIterator[bytes], owner: str) -> Job:
        """Store the file, count it, make the job (CREATED) and enqueue it. JobRefused when a
        limit or the file says no; nothing is kept then."""
        return (await self.submit_once(spec, source, owner)).job

    async def submit_once(
        self,
        spec: JobSpec,
        source: AsyncIterator[bytes],
        owner: str,
        once: Once | None = None,
    ) -> Submitted:
        """`submit`, under an Idempotency-Key when `once` is given: a retry of the same
        submission gets its job back (`replayed`). JobRefused with the idempotency error's code
        for a key reused with another file, or still in use."""
        config = self.config
        if once is not None:
            try:
                check_key(once.key)
            except IdempotencyError as error:
                raise JobRefused(error.code, str(error)) from None
        else:
            # Refused before the upload is read when the client is over its limit already (a
            # keyed retry is read first: its job may be one of those). The limit itself holds
            # in create_job, where concurrent submissions take turns.
            active = await rows.count_active(self.engine, owner)
            if active >= config.max_active_per_client:
                raise _too_many_active(active, config.max_active_per_client)
        job_id = rows.new_job_id()
        stored = JobFiles.of(config.jobs_dir, job_id, spec.file_format)
        digest = hashlib.sha256()
        try:
            total = await self._store(job_id, spec, _hashed(source, digest))
            self._check_records(spec, total)
            if once is not None:
                meaning = fingerprint(["submitBulkJob", repr(spec), digest.hexdigest()])
                first = await self._claim(once, meaning)
                if first is not None:
                    await asyncio.to_thread(stored.remove)
                    return Submitted(first, replayed=True)
            try:
                job = await rows.create_job(
                    self.engine,
                    spec,
                    owner,
                    total,
                    utcnow() + timedelta(seconds=config.retention_seconds),
                    job_id=job_id,
                    max_active=config.max_active_per_client,
                )
            except BaseException:
                if once is not None:
                    await once.store.release(once.key, once.scope)
                raise
        except rows.TooManyActive as over:
            await asyncio.to_thread(stored.remove)
            raise _too_many_active(over.active, config.max_active_per_client) from None
        except BaseException:
            await asyncio.to_thread(stored.remove)
            raise
        if once is not None:
            await once.store.complete(once.key, once.scope, 202, job.id)
        try:
            await brokers.enqueue(self.broker, job.id)
        except (OSError, RedisError, SendTaskError) as error:
            # The row is the job: the workers' reapers take a waiting job within a third of a
            # lease even without its message, so the client still gets its job.
            logger.warning(
                "job %s: not enqueued (%s); a worker's reaper will take it", job.id, error
            )
        return Submitted(job)

    async def _claim(self, once: Once, meaning: str) -> Job | None:
        """None: the key is this submission's now; else the job its first use made."""
        try:
            first = await once.store.claim(once.key, once.scope, meaning)
        except IdempotencyError as error:
            raise JobRefused(error.code, str(error)) from None
        if first is None:
            return None
        job = await rows.get_job(self.engine, first.body)
        if job is None:  # only a bug (rows are never deleted) gets here
            raise RuntimeError(f"{once.key!r} names job {first.body}, which does not exist")
        return job

    async def _store(self, job_id: str, spec: JobSpec, source: AsyncIterator[bytes]) -> int:
        """The file in the job's directory; its records counted as the runner will read them."""
        entity = ENTITIES.get(spec.entity)
        if entity is None:
            raise JobRefused(
                UNKNOWN_ENTITY, f"unknown entity {spec.entity!r}: one of {', '.join(ENTITIES)}"
            )
        stored = JobFiles.of(self.config.jobs_dir, job_id, spec.file_format)
        try:
            await store_input(stored, source, self.config.max_file_bytes)
        except FileTooLarge:
            raise JobRefused(
                FILE_TOO_LARGE,
                f"the file is larger than {self.config.max_file_bytes} bytes, the most one job "
                f"takes ({SETTING['max_file_bytes']}): split it into several jobs",
            ) from None
        try:
            return await asyncio.to_thread(
                sources.count_rows,
                stored.input,
                spec.file_format.value,
                entity,
                extra_columns=EXTRA_COLUMNS,
                max_line_bytes=self.config.max_line_bytes,
            )
        except (sources.SourceError, UnicodeDecodeError) as error:
            raise JobRefused(INVALID_FILE, f"the file cannot be read: {error}") from None

    def _check_records(self, spec: JobSpec, total: int) -> None:
        config = self.config
        if total > config.max_records:
            raise JobRefused(
                TOO_MANY_RECORDS,
                f"the file has {total} records; one job takes at most {config.max_records} "
                f"({SETTING['max_records']}): split it into several jobs",
            )
        if spec.options.atomic and total > config.max_atomic_records:
            raise JobRefused(
                ATOMIC_TOO_LARGE,
                f"the file has {total} records; an atomic job (one transaction) takes at most "
                f"{config.max_atomic_records} ({SETTING['max_atomic_records']}): send it "
                "without atomic, or in several atomic jobs",
            )

    # Reading and changing.

    async def get(self, job_id: str) -> Job | None:
        return await rows.get_job(self.engine, job_id)

    async def list(
        self, *, owner: str | None, status: JobStatus | None = None, first: int = 100
    ) -> list[Job]:
        return await rows.list_jobs(self.engine, owner=owner, status=status, first=first)

    async def cancel(self, job_id: str) -> Job | None:
        """CREATED: CANCELED at once; RUNNING: CANCELING, its worker stops between chunks.
        A final job is left alone. None when there is no such job."""
        job = await rows.request_cancel(self.engine, job_id)
        if job is not None and job.status is JobStatus.CANCELED and job.started_at is None:
            # No worker will ever take it: its results and unprocessed files are written here.
            try:
                await report_never_run(self.config.jobs_dir, job, self.config.max_line_bytes)
            except (OSError, ValueError):
                logger.exception("job %s: canceled, but its files could not be written", job.id)
        if job is not None:
            # Watchers learn of it now, not at the runner's next chunk.
            with contextlib.suppress(Exception):
                await self.bus.publish(progress_of(job))
        return job

    def watch(self, job_id: str) -> AsyncIterator[JobProgress]:
        """Its progress: the row now, live events, the row at the end (`final`). Raises
        JobNotFound at the first step when there is no such job."""
        return watch(self.engine, self.bus, job_id)

    async def stats(self) -> JobStats:
        with uncounted():  # a scrape, like a health probe, is no request's work
            return await job_stats(self.engine)


async def _hashed(source: AsyncIterator[bytes], digest: hashlib._Hash) -> AsyncIterator[bytes]:
    """`source`, its bytes added to `digest` as they pass."""
    async for chunk in source:
        digest.update(chunk)
        yield chunk


def _too_many_active(active: int, limit: int) -> JobRefused:
    return JobRefused(
        TOO_MANY_ACTIVE_JOBS,
        f"this client has {active} bulk jobs not finished; at most {limit} at once "
        f"({SETTING['max_active_per_client']}): wait for one to finish, or cancel one",
    )


async def _not_here(job_id: str) -> None:
    raise RuntimeError(f"job {job_id}: jobs run in `batchery worker` processes, not the API")
