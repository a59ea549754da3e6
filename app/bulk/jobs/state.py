"""One run of a job as `JobRunner` carries it from step to step, its configuration, and the
computations on it (counts, progress events, where a continueOnError-false job stops); and the
files of a job that never ran."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.bulk.entities import ENTITIES, Entity
from app.bulk.importing import SourceRow
from app.bulk.jobs import sources
from app.bulk.jobs.files import JobFiles, RecordWriter, ResultFiles
from app.bulk.jobs.lines import DEFAULT_MAX_LINE_BYTES
from app.bulk.jobs.model import Job, JobCounts, JobProgress, JobStatus
from app.bulk.jobs.records import EXTRA_COLUMNS, Outcome
from app.bulk.model import ErrorCode, RecordError


class ErrorCodes:
    """Why a job ended FAILED (`Job.error_code`), besides the database faults' codes."""

    INTERNAL = ErrorCode.INTERNAL
    INVALID_FILE = "INVALID_FILE"
    UNKNOWN_ENTITY = "UNKNOWN_ENTITY"
    ATOMIC_TOO_LARGE = "ATOMIC_TOO_LARGE"
    TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"
    ROLLED_BACK = ErrorCode.ALL_OR_NONE_ROLLED_BACK
    # continueOnError false: the job stopped at its first failed record.
    STOPPED = "STOPPED_AT_FAILURE"


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    lease_seconds: float = 60.0
    progress_interval_seconds: float = 0.5
    max_atomic_records: int = 100_000
    # Chunk sizes: steered toward `target_seconds` a chunk, within [min_chunk, max_chunk]
    # (max_chunk: the bulk engine's max_records_per_batch).
    min_chunk: int = 10
    max_chunk: int = 200
    target_seconds: float = 0.25
    # A job claimed more often than this (it keeps killing its workers) is failed.
    max_attempts: int = 5
    # fsync the result files before each commit: exactly once across a machine crash too.
    fsync: bool = True
    # A longer record (a JSON line, a CSV row) is a bad one, skipped without being held.
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES


class LeaseLost(Exception):
    """Another worker owns the job now: this run must stop and write nothing more."""


@dataclass(slots=True)
class RunState:
    """One run of one job: what the steps pass along."""

    job: Job
    entity: Entity
    results: ResultFiles
    counts: JobCounts
    started: float
    last_event: float = field(default=float("-inf"))
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES

    @classmethod
    def of(
        cls,
        job: Job,
        jobs_dir: Path,
        entity: Entity | None,
        now: float,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> RunState:
        files = JobFiles.of(jobs_dir, job.id, job.spec.file_format)
        results = ResultFiles(
            files, RecordWriter(job.spec.file_format, []), job.results_bytes, job.failed_bytes
        )
        # An unknown entity fails the job before anything reads it.
        fallback = next(iter(ENTITIES.values()))
        return cls(job, entity or fallback, results, job.counts, now, max_line_bytes=max_line_bytes)

    def open(self) -> None:
        """Read the CSV header, cut the result files back to the checkpoint."""
        files = self.results.files
        if not files.input.is_file():
            raise sources.SourceError(
                f"no such file: {files.input} (the API and every worker must share "
                "BATCHERY_JOBS_DIR)"
            )
        if self.job.spec.file_format.value == sources.CSV:
            self.results.records.header = sources.csv_header(files.input, self.max_line_bytes)
        self.results.open()

    def rows(self, skip: int = 0, *, safe: bool = False) -> Iterator[SourceRow]:
        """The input's records from the `skip`-th; `safe`: up to where it cannot be read."""
        files = self.results.files
        if safe and not files.input.is_file():
            return iter(())
        rows = sources.read_rows(
            files.input, self.job.spec.file_format.value, self.entity, skip=skip,
            extra_columns=EXTRA_COLUMNS, max_line_bytes=self.max_line_bytes,
        )  # fmt: skip
        return readable_part(rows) if safe else rows

    def add(self, done: Sequence[Outcome]) -> JobCounts:
        """The counts once `done` is committed too."""
        counts = self.counts
        succeeded = sum(1 for outcome in done if outcome.success)
        return JobCounts(
            counts.total,
            counts.processed + len(done),
            counts.succeeded + succeeded,
            counts.failed + len(done) - succeeded,
        )

    def lines(self, done: Sequence[Outcome]) -> tuple[bytes, bytes]:
        """What `done` adds to results.jsonl and to failed.<fmt>."""
        lines = b"".join(outcome.line() for outcome in done)
        failed = [outcome.row for outcome in done if not outcome.success]
        if not failed:
            return lines, b""
        records = self.results.records
        return lines, self.results.failed_head() + b"".join(records.record(r) for r in failed)


def progress_event(
    run: RunState, status: JobStatus, now: float, *, checked: int | None, final: Job | None
) -> JobProgress:
    """Counts (the final row's for the last event), rate since this run started, ETA at it.
    `checked`: records done in an atomic job's open transaction (in rate and ETA, not in the
    counts, which would go back to nothing if it rolled back)."""
    counts = final.counts if final is not None else run.counts
    done = checked if checked is not None else counts.processed - run.job.counts.processed
    elapsed = now - run.started
    rate = done / elapsed if done > 0 and elapsed > 0 else None
    left = counts.total - (checked if checked is not None else counts.processed)
    eta = max(left, 0) / rate if rate else None
    return JobProgress(
        run.job.id,
        final.status if final is not None else status,
        counts,
        rate=rate,
        eta_seconds=0.0 if final is not None else eta,
        final=final is not None,
        at=time.time(),
    )


def readable_part(rows: Iterator[SourceRow]) -> Iterator[SourceRow]:
    """The rows up to where the file cannot be read any more (a job failing for that reason
    lists what it can)."""
    try:
        yield from rows
    except (sources.SourceError, UnicodeDecodeError, OSError):
        return


async def report_never_run(
    jobs_dir: Path, job: Job, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> None:
    """The files of a job canceled before a worker took it (`request_cancel` made it CANCELED
    at once): every record NOT_PROCESSED in results.jsonl and listed in unprocessed.<fmt>."""
    run = RunState.of(job, jobs_dir, ENTITIES.get(job.spec.entity), 0.0, max_line_bytes)
    error = RecordError(ErrorCode.NOT_PROCESSED, "not processed: the job was canceled")

    def write() -> None:
        if run.results.files.results.exists():  # reported already (a second cancel)
            return
        run.open()
        run.results.not_processed(run.rows(safe=True), error, fsync=False)

    await asyncio.to_thread(write)


def through_first_unreadable(
    chunk: list[SourceRow],
) -> tuple[list[SourceRow], list[SourceRow]]:
    """continueOnError false: the chunk up to its first unreadable row, and what follows."""
    at = next((i for i, row in enumerate(chunk) if row.data is None), None)
    return (chunk, []) if at is None else (chunk[: at + 1], chunk[at + 1 :])


def through_first_failure(done: list[Outcome]) -> list[Outcome]:
    """continueOnError false: the outcomes through the first failure (the engine reported the
    records after it NOT_PROCESSED and wrote none of them)."""
    at = next((i for i, outcome in enumerate(done) if not outcome.success), None)
    return done if at is None else done[: at + 1]
