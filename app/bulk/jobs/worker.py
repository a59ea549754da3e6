"""What executes jobs in a process: the `run_job` task, the reaper, the retention sweep.

A process (a `batchery worker`, or the API when jobs are embedded) runs at most
`worker_concurrency` jobs at once. A job is run only once claimed in the table
(`app.db.jobs.claim_job`): a message for a job another worker holds is dropped, so duplicate
deliveries are harmless. The reaper claims, every third of a lease, jobs nobody holds: those
whose worker died (its lease ran out), and new ones whose message was lost (the in-memory
broker of an API process that restarted). Every claim of a job counts an attempt but the ones a
worker hands back cleanly (stopping); the runner fails a job that keeps killing its workers
instead of retrying it forever.

Stopping (SIGTERM) takes no new job, cancels the running ones between two statements (the chunk
in flight rolls back; what was committed is the job's checkpoint) and gives their leases back,
so another worker resumes them at its next reaper tick instead of a lease later.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import socket
from collections.abc import Callable, Coroutine
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bulk.jobs.broker import forget_consumer, make_broker, receive, register, start
from app.bulk.jobs.config import JobsConfig
from app.bulk.jobs.files import JobFiles
from app.bulk.jobs.model import Job
from app.db import jobs as rows
from app.db.statements import uncounted

logger = logging.getLogger("batchery.jobs")

# Final jobs expired per sweep (each is a directory removed and one UPDATE).
SWEEP_BATCH = 100

Execute = Callable[[Job, str], Coroutine[Any, Any, None]]


def worker_id() -> str:
    """`host:pid:random`: the pid tells an operator (and the crash test) which process holds a
    job; the random part tells two lives of one pid apart."""
    # lease_owner holds 64 characters: a long host name is cut, the pid never.
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class JobWorker:
    def __init__(
        self,
        engine: AsyncEngine,
        config: JobsConfig,
        execute: Execute,
        *,
        name: str | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.name = name or worker_id()
        self._execute = execute
        self._slots = asyncio.Semaphore(config.worker_concurrency)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._reaped: set[asyncio.Task[None]] = set()
        # The tasks of taskiq messages in `run_job` (claiming, running, handing back): stop()
        # waits for them, so nothing of theirs is written after it returned (the process exits,
        # or the database is closed, next).
        self._holders: set[asyncio.Task[Any]] = set()
        self._stopping = False

    @property
    def running(self) -> frozenset[str]:
        return frozenset(self._running)

    async def run_job(self, job_id: str) -> None:
        """The taskiq task: run `job_id` if nobody else holds it."""
        if self._stopping:
            return
        holder = asyncio.current_task()
        if holder is not None:
            self._holders.add(holder)
        try:
            with uncounted():  # background work, whichever request's task kicked it
                await self._take(job_id)
        finally:
            self._holders.discard(holder)

    async def _take(self, job_id: str) -> None:
        async with self._slots:
            if self._stopping:  # it waited for a slot while the worker was told to stop
                return
            job = await rows.claim_job(self.engine, self.name, self.config.lease_seconds, job_id)
            if job is not None:
                await self._run(job)

    def start(self) -> None:
        with uncounted():  # the reaper, and the jobs it starts, are nobody's request
            self._loops.append(asyncio.create_task(self._reap_loop(), name="jobs reaper"))

    async def stop(self) -> None:
        """Take nothing new, stop the running jobs and hand their leases back."""
        self._stopping = True
        for loop in self._loops:
            loop.cancel()
        for running in list(self._running.values()):
            running.cancel()
        waited = {*self._loops, *self._running.values(), *self._reaped, *self._holders}
        waited.discard(asyncio.current_task())
        await asyncio.gather(*waited, return_exceptions=True)
        self._loops.clear()

    async def reap(self) -> int:
        """Claim and start jobs nobody holds while this process has room; how many started."""
        started = 0
        while not self._stopping and not self._slots.locked():
            await self._slots.acquire()
            try:
                job = await rows.claim_job(self.engine, self.name, self.config.lease_seconds)
            except BaseException:
                self._slots.release()
                raise
            if job is None:
                self._slots.release()
                break
            if job.attempts > 1:
                logger.warning(
                    "job %s: resumed (attempt %d) after %d of %d records",
                    job.id,
                    job.attempts,
                    job.counts.processed,
                    job.counts.total,
                )
            task = asyncio.create_task(self._run_in_slot(job), name=f"job {job.id}")
            self._reaped.add(task)
            task.add_done_callback(self._reaped.discard)
            started += 1
        return started

    async def join(self) -> None:
        """Wait for the jobs the reaper started to end."""
        await asyncio.gather(*self._reaped, return_exceptions=True)

    async def _run_in_slot(self, job: Job) -> None:
        try:
            await self._run(job)
        finally:
            self._slots.release()

    async def sweep(self) -> int:
        """Expire final jobs past their retention: files first, then the row (a crash between
        leaves a row still listing files that are gone, and the next sweep finishes it)."""
        expired = 0
        for job in await rows.expired_jobs(self.engine, first=SWEEP_BATCH):
            stored = JobFiles.of(self.config.jobs_dir, job.id, job.spec.file_format)
            await asyncio.to_thread(stored.remove)
            if await rows.mark_expired(self.engine, job.id):
                expired += 1
        return expired

    async def _reap_loop(self) -> None:
        while True:
            try:
                await self.reap()
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database is away: the next pass tries again.
                logger.exception("jobs reaper: pass failed")
            await asyncio.sleep(self.config.reap_interval_seconds)

    async def _run(self, job: Job) -> None:
        if self._stopping:  # claimed while stop() went by: give it straight back
            await self._release(job)
            return
        task = asyncio.create_task(self._execute(job, self.name), name=f"run {job.id}")
        self._running[job.id] = task
        try:
            await task
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            await self._release(job)
        except Exception:
            # The runner reports a job's failures in its row; this is a bug in it. The lease
            # runs out and the job is retried (the runner gives up after a few attempts).
            logger.exception("job %s: the runner failed", job.id)
        finally:
            self._running.pop(job.id, None)

    async def _release(self, job: Job) -> None:
        try:
            await rows.release_lease(self.engine, job.id, self.name)
        except Exception:
            logger.exception("job %s: could not give its lease back; it runs out", job.id)


async def serve(
    engine: AsyncEngine,
    config: JobsConfig,
    execute: Execute,
    stop: asyncio.Event,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """A `batchery worker` process: take jobs from the shared queue (and the reaper) until
    `stop` is set, then hand the running ones back (JobWorker.stop)."""
    assert not config.embedded, "a worker process needs the shared queue (BATCHERY_JOBS_BROKER)"
    await asyncio.to_thread(config.jobs_dir.mkdir, parents=True, exist_ok=True)
    worker = JobWorker(engine, config, execute)
    broker = make_broker(config, consumer=worker.name)
    register(broker, worker.run_job)
    await start(broker, config)
    finish = asyncio.Event()
    receiving = asyncio.create_task(
        receive(broker, config.worker_concurrency, finish), name="jobs receiver"
    )
    worker.start()
    logger.info(
        "worker %s: taking jobs from %s (%d at once)",
        worker.name,
        hide_password(config.broker_url),
        config.worker_concurrency,
    )
    if on_ready is not None:
        on_ready(worker.name)
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({receiving, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        finish.set()
        await worker.stop()
        # The receiver acknowledges the messages of the jobs just handed back, then returns.
        await asyncio.wait({receiving}, timeout=config.lease_seconds)
        receiving.cancel()
        stopped.cancel()
        try:
            await forget_consumer(broker)
        except (OSError, RedisError) as error:
            logger.warning("worker %s: could not leave the consumer group (%s)", worker.name, error)
        await broker.shutdown()
    if receiving.done() and not receiving.cancelled():
        failure = receiving.exception()
        if failure is not None:
            raise failure


def hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^/?#]*@", r"\1***@", url)
