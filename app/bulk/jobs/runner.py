"""`JobRunner.run(job)`: a claimed job executed through the bulk engine, chunk by chunk, exactly
once across crashes (docs/jobs.md: How a job runs).

Each chunk is one transaction holding the chunk's writes (`app.bulk.apply`: set-based, checked,
with the record-by-record fallback) and the job's checkpoint (`app.db.jobs.checkpoint`: counts,
result file sizes, lease renewal, fenced on this worker's lease and on RUNNING). The chunk's
result lines are written to the files after the fenced checkpoint statement and before the
commit, so while they are written no other worker can own the job (the row is held on
PostgreSQL, the write lock on SQLite). A crash loses at most the open chunk: its rows roll back,
the files are cut back to the checkpoint when the job resumes, and the resumed run skips the
`processed` records. A checkpoint refused because a cancel was asked rolls the chunk back and
ends the job CANCELED; refused because another worker owns the job, the run stops, silent.

`atomic` jobs are one transaction for the whole file, committed only if every record succeeded,
and fenced at the end; so they are capped (`max_atomic_records`), and their progress events
carry rate and ETA but counts only when the transaction ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.bulk.apply import SetWriteFailed, apply
from app.bulk.chunking import AdaptiveChunker
from app.bulk.entities import ENTITIES, Entity
from app.bulk.importing import SourceRow
from app.bulk.jobs import sources
from app.bulk.jobs.config import SETTING
from app.bulk.jobs.model import Job, JobProgress, JobStatus
from app.bulk.jobs.records import Outcome, outcomes, record_of
from app.bulk.jobs.state import (
    ErrorCodes,
    LeaseLost,
    RunnerConfig,
    RunState,
    progress_event,
    report_never_run,
    through_first_failure,
    through_first_unreadable,
)
from app.bulk.model import BatchRequest, ErrorCode, RecordError, RecordResult
from app.db import jobs
from app.db.faults import database_fault
from app.db.transactions import write_connection

__all__ = [
    "ErrorCodes",
    "JobRunner",
    "LeaseLost",
    "ProgressCallback",
    "RunnerConfig",
    "report_never_run",
]

logger = logging.getLogger("batchery.jobs")

ProgressCallback = Callable[[JobProgress], Awaitable[None]]


class JobRunner:
    def __init__(
        self,
        engine: AsyncEngine,
        jobs_dir: Path,
        worker: str,
        config: RunnerConfig | None = None,
        *,
        progress: ProgressCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.jobs_dir = jobs_dir
        self.worker = worker
        self.config = config or RunnerConfig()
        self.progress = progress
        self.clock = clock

    async def run(self, job: Job) -> Job | None:
        """Execute `job`, claimed by this worker (`app.db.jobs.claim_job`), from its checkpoint;
        the final row, or None when another worker took the job over (or the database could not
        be told how it ended: then the lease runs out and another worker resumes it)."""
        assert job.lease_owner == self.worker, "run only a job this worker claimed"
        entity = ENTITIES.get(job.spec.entity)
        run = RunState.of(job, self.jobs_dir, entity, self.clock(), self.config.max_line_bytes)
        try:
            final: Job | None = await self._execute(run, entity)
        except LeaseLost:
            logger.info("job %s: taken over by another worker; %s stops", job.id, self.worker)
            return None
        except Exception as failure:
            final = await self._failed(run, failure)
        if final is not None:
            await self._emit(run, final.status, final=final)
        return final

    async def _execute(self, run: RunState, entity: Entity | None) -> Job:
        job = run.job
        await asyncio.to_thread(run.open)
        if entity is None:
            message = f"no entity {job.spec.entity!r}; there are {', '.join(ENTITIES)}"
            return await self._stop(run, JobStatus.FAILED, ErrorCodes.UNKNOWN_ENTITY, message)
        if job.attempts > self.config.max_attempts:
            # What stopped the last attempt, when a worker could record it (a database fault).
            last = f"; the last: {job.error_message}" if job.error_message else ""
            message = (
                f"the job was started {job.attempts} times without finishing "
                f"(at most {self.config.max_attempts}): its workers keep stopping{last}"
            )
            return await self._stop(run, JobStatus.FAILED, ErrorCodes.TOO_MANY_ATTEMPTS, message)
        if job.status is JobStatus.CANCELING:
            return await self._stop(run, JobStatus.CANCELED)
        if job.spec.options.atomic:
            return await self._atomic(run)
        return await self._chunks(run)

    # -- chunk by chunk ------------------------------------------------------------------

    async def _chunks(self, run: RunState) -> Job:
        chunker = AdaptiveChunker(
            self.config.target_seconds,
            min(self.config.min_chunk, self.config.max_chunk),
            self.config.max_chunk,
            size=min(self.config.min_chunk, self.config.max_chunk),
        )
        source = run.rows(skip=run.counts.processed)
        stop_on_error = not run.job.spec.options.continue_on_error
        while chunk := list(itertools.islice(source, chunker.size)):
            started = self.clock()
            if stop_on_error:
                chunk, rest = through_first_unreadable(chunk)
                source = itertools.chain(rest, source)
            done = await self._commit_chunk(run, chunk)
            chunker.record(len(chunk), self.clock() - started)
            if done is None:  # a cancel was asked: this chunk was rolled back
                return await self._stop(
                    run, JobStatus.CANCELED, remaining=itertools.chain(chunk, source)
                )
            failed = next((o for o in done if not o.success), None)
            if stop_on_error and failed is not None:
                rest = chunk[len(done) :]
                message = (
                    f"stopped at line {failed.row.line} ({failed.errors[0].message}): "
                    "continueOnError is false"
                )
                remaining = itertools.chain(rest, source)
                return await self._stop(
                    run, JobStatus.FAILED, ErrorCodes.STOPPED, message, remaining
                )
            await self._emit(run, JobStatus.RUNNING)
        return await self._stop(run, JobStatus.COMPLETED)

    async def _commit_chunk(self, run: RunState, chunk: list[SourceRow]) -> list[Outcome] | None:
        """The chunk's writes and checkpoint, committed; its outcomes (up to the first failure
        when continueOnError is false). None when a cancel was asked (nothing committed)."""
        try:
            return await self._try_chunk(run, chunk, isolated=False)
        except SetWriteFailed as reason:
            logger.info(
                "job %s: set-based write refused (%s); record by record", run.job.id, reason
            )
            return await self._try_chunk(run, chunk, isolated=True)

    async def _try_chunk(
        self, run: RunState, chunk: list[SourceRow], *, isolated: bool
    ) -> list[Outcome] | None:
        job, options = run.job, run.job.spec.options
        readable = [row for row in chunk if row.data is not None]
        async with write_connection(self.engine) as conn, conn.begin() as transaction:
            done: list[Outcome] = outcomes(chunk, await self._apply(conn, run, readable, isolated))
            if not options.continue_on_error:
                done = through_first_failure(done)
            counts = run.add(done)
            lines, failed_lines = run.lines(done)
            kept = await jobs.checkpoint(
                conn,
                job.id,
                self.worker,
                counts,
                results_bytes=run.results.pending_results + len(lines),
                failed_bytes=run.results.pending_failed + len(failed_lines),
                lease_seconds=self.config.lease_seconds,
            )
            if not kept:
                await transaction.rollback()
                await self._cancel_asked(run)
                return None
            try:
                await asyncio.to_thread(
                    run.results.append, lines, failed_lines, fsync=self.config.fsync
                )
            except BaseException:
                await asyncio.to_thread(run.results.rollback)
                raise
        run.results.keep()
        run.counts = counts
        return done

    async def _apply(
        self, conn: AsyncConnection, run: RunState, rows: Sequence[SourceRow], isolated: bool
    ) -> list[RecordResult]:
        if not rows:
            return []
        spec = run.job.spec
        options = replace(spec.options, atomic=False, return_records=False)
        request = BatchRequest(
            spec.operation, [record_of(spec.operation, r) for r in rows], options
        )
        if not options.validate_only:
            return await apply(conn, run.entity, request, isolated=isolated)
        # A dry run still commits its checkpoint: the writes alone are undone.
        async with conn.begin_nested() as savepoint:
            results = await apply(conn, run.entity, request, isolated=isolated)
            await savepoint.rollback()
        return results

    async def _cancel_asked(self, run: RunState) -> None:
        """After a refused checkpoint: return when it was a cancel, else LeaseLost."""
        now = await jobs.get_job(self.engine, run.job.id)
        if now is None or now.lease_owner != self.worker or now.status is not JobStatus.CANCELING:
            raise LeaseLost()

    # -- atomic: the whole file, one transaction -------------------------------------------

    async def _atomic(self, run: RunState) -> Job:
        limit = self.config.max_atomic_records
        if run.job.counts.total > limit:
            message = (
                f"an atomic job holds at most {limit} records ({SETTING['max_atomic_records']}),"
                f" this one {run.job.counts.total}; nothing was written: submit it without "
                "atomic, or split it"
            )
            return await self._stop(run, JobStatus.FAILED, ErrorCodes.ATOMIC_TOO_LARGE, message)
        try:
            return await self._atomic_attempt(run, isolated=False)
        except SetWriteFailed as reason:
            logger.info(
                "job %s: set-based write refused (%s); record by record", run.job.id, reason
            )
            return await self._atomic_attempt(run, isolated=True)

    async def _atomic_attempt(self, run: RunState, *, isolated: bool) -> Job:
        done: list[Outcome] = []
        source = run.rows()
        size = self.config.max_chunk
        async with write_connection(self.engine) as conn, conn.begin() as transaction:
            while chunk := list(itertools.islice(source, size)):
                readable = [row for row in chunk if row.data is not None]
                done.extend(outcomes(chunk, await self._apply(conn, run, readable, isolated)))
                if await self._atomic_status(run) is JobStatus.CANCELING:
                    await transaction.rollback()
                    return await self._stop(run, JobStatus.CANCELED, remaining=run.rows())
                await self._emit(run, JobStatus.RUNNING, checked=len(done))
            failures = [outcome for outcome in done if not outcome.success]
            if not failures and not run.job.spec.options.validate_only:
                return await self._close(run, conn, JobStatus.COMPLETED, done)
            await transaction.rollback()
        if not failures:  # validateOnly: checked, nothing kept
            async with write_connection(self.engine) as conn, conn.begin():
                return await self._close(run, conn, JobStatus.COMPLETED, done)
        lines = ", ".join(str(outcome.row.line) for outcome in failures[:5])
        message = (
            f"the job is atomic and {len(failures)} record(s) failed (lines {lines}"
            f"{', ...' if len(failures) > 5 else ''}): nothing was written"
        )
        error = RecordError(ErrorCode.ALL_OR_NONE_ROLLED_BACK, message)
        rolled_back = [o if not o.success else Outcome(o.row, None, (error,)) for o in done]
        async with write_connection(self.engine) as conn, conn.begin():
            return await self._close(
                run, conn, JobStatus.FAILED, rolled_back, ErrorCodes.ROLLED_BACK, message
            )

    async def _atomic_status(self, run: RunState) -> JobStatus | None:
        """Between chunks of the open transaction: is a cancel asked? On PostgreSQL this also
        renews the lease; SQLite cannot write beside the open transaction (nor can any other
        worker take the job while it holds the write lock)."""
        if self.engine.dialect.name == "sqlite":
            now = await jobs.get_job(self.engine, run.job.id)
            status = now.status if now is not None and now.lease_owner == self.worker else None
        else:
            status = await jobs.renew_lease(
                self.engine, run.job.id, self.worker, self.config.lease_seconds
            )
        if status is None:
            raise LeaseLost()
        return status

    # -- the end ---------------------------------------------------------------------------

    async def _close(
        self,
        run: RunState,
        conn: AsyncConnection,
        status: JobStatus,
        done: Sequence[Outcome],
        error_code: str | None = None,
        message: str | None = None,
    ) -> Job:
        """An atomic job's end, in `conn`'s transaction: every outcome written, then the row."""
        if await jobs.lock_job(conn, run.job.id, self.worker) is None:
            raise LeaseLost()
        lines, failed_lines = run.lines(done)
        await asyncio.to_thread(run.results.append, lines, failed_lines, fsync=self.config.fsync)
        run.counts = run.add(done)
        return await self._finish(run, conn, status, error_code, message)

    async def _stop(
        self,
        run: RunState,
        status: JobStatus,
        error_code: str | None = None,
        message: str | None = None,
        remaining: Iterable[SourceRow] | None = None,
    ) -> Job:
        """End the job after its last checkpoint: the records not committed (`remaining`, by
        default all after the checkpoint) are reported NOT_PROCESSED and listed in
        unprocessed.<fmt>. Files and row in one fenced transaction."""
        if remaining is None:
            remaining = () if status is JobStatus.COMPLETED else run.rows(safe=True)
        why = {
            JobStatus.CANCELED: "the job was canceled",
            JobStatus.FAILED: f"the job failed ({error_code})",
        }.get(status, "the job ended")
        error = RecordError(ErrorCode.NOT_PROCESSED, f"not processed: {why}")
        async with write_connection(self.engine) as conn, conn.begin():
            if await jobs.lock_job(conn, run.job.id, self.worker) is None:
                raise LeaseLost()
            if status is not JobStatus.COMPLETED:
                try:
                    await asyncio.to_thread(
                        run.results.not_processed, remaining, error, fsync=self.config.fsync
                    )
                except OSError:  # the job's files are damaged or gone: the row still ends
                    logger.exception("job %s: its unprocessed records were not listed", run.job.id)
            return await self._finish(run, conn, status, error_code, message)

    async def _finish(
        self,
        run: RunState,
        conn: AsyncConnection,
        status: JobStatus,
        error_code: str | None,
        message: str | None,
    ) -> Job:
        final = await jobs.finish_job(
            conn,
            run.job.id,
            self.worker,
            status,
            run.counts,
            results_bytes=run.results.pending_results,
            failed_bytes=run.results.pending_failed,
            error_code=error_code,
            error_message=message,
        )
        if final is None:  # the row was locked for this worker: only a bug gets here
            raise LeaseLost()
        await conn.commit()
        run.results.keep()
        logger.info(
            "job %s: %s, %d of %d records processed, %d failed",
            final.id,
            final.status.value,
            final.counts.processed,
            final.counts.total,
            final.counts.failed,
        )
        return final

    async def _failed(self, run: RunState, failure: Exception) -> Job | None:
        """An unexpected fault: the open chunk is rolled back. A database outage is transient:
        the job is handed back (`_hand_back`) to resume from its checkpoint. Anything else ends
        it FAILED, the records after the checkpoint NOT_PROCESSED. If even that cannot be
        recorded (the database is gone), the lease runs out and another worker resumes it."""
        fault = database_fault(failure)
        if isinstance(failure, (sources.SourceError, UnicodeDecodeError, FileNotFoundError)):
            code, message = ErrorCodes.INVALID_FILE, f"the file cannot be read: {failure}"
        elif fault is not None:
            logger.warning("job %s: %s (%s)", run.job.id, fault.code, failure)
            await self._hand_back(run, fault.code, fault.retry_after_seconds)
            return None
        else:
            logger.exception("job %s failed", run.job.id)
            code = ErrorCodes.INTERNAL
            message = f"an unexpected fault stopped job {run.job.id} (the server's log says more)"
        try:
            with contextlib.suppress(OSError):  # files damaged: _stop says so, the row ends
                await asyncio.to_thread(run.results.rollback)
            return await self._stop(run, JobStatus.FAILED, code, message)
        except LeaseLost:
            return None
        except Exception:
            logger.exception("job %s: its failure could not be recorded", run.job.id)
            return None

    async def _hand_back(self, run: RunState, code: str, retry_after: float) -> None:
        """The database failed under the job: nothing past the checkpoint is kept, and the job
        is given back, this attempt counted and the fault in its error fields (it is still
        RUNNING: they say why it waits), for a reaper to resume it once the database is back;
        after `max_attempts` the runner fails it. Not recorded (the database is still away):
        the lease runs out instead, to the same effect."""
        job = run.job
        # Waits growing with the attempts, so a longer outage does not use them all up at once.
        wait = min(self.config.lease_seconds, retry_after * 2 ** max(job.attempts - 1, 0))
        message = (
            f"attempt {job.attempts} of {self.config.max_attempts} stopped: the database was "
            f"{'busy' if code == 'DATABASE_BUSY' else 'unavailable'} after "
            f"{run.counts.processed} of {job.counts.total} records; the job resumes from there"
        )
        try:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(run.results.rollback)
            await jobs.release_lease(
                self.engine,
                job.id,
                self.worker,
                error_code=code,
                error_message=message,
                resume_after=wait,
            )
        except Exception as again:
            logger.warning("job %s: not handed back (%s); its lease runs out", job.id, again)

    # -- progress ------------------------------------------------------------------------

    async def _emit(
        self,
        run: RunState,
        status: JobStatus,
        *,
        checked: int | None = None,
        final: Job | None = None,
    ) -> None:
        """A progress event at most every progress_interval seconds; the final one always.
        `checked`: records done in an atomic job's open transaction (counted in rate and ETA,
        not yet in the counts)."""
        if self.progress is None:
            return
        now = self.clock()
        if final is None and now - run.last_event < self.config.progress_interval_seconds:
            return
        run.last_event = now
        event = progress_event(run, status, now, checked=checked, final=final)
        try:
            await self.progress(event)
        except Exception:  # a watcher's trouble is not the job's
            logger.warning("job %s: a progress event was lost", run.job.id, exc_info=True)
