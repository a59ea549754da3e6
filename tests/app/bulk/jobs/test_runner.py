"""`JobRunner`: jobs run to the end, in chunks, exactly once across crashes and lost leases;
cancel keeps what was committed; atomic jobs write all or nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.bulk.jobs.model import FileFormat, Job, JobCounts, JobProgress, JobStatus
from app.bulk.jobs.runner import JobRunner, RunnerConfig, report_never_run
from app.bulk.model import BatchOptions, Operation
from app.db import jobs
from app.db.faults import UNAVAILABLE_RETRY_AFTER_SECONDS
from app.db.models import utcnow
from app.db.statements import count_statements
from tests import dbstate
from tests.app.bulk.jobs.jobkit import (
    Events,
    bakery,
    claim,
    file_of,
    fixed,
    jsonl,
    keys_with_prefix,
    results,
    run_job,
    submit,
)
from tests.conftest import POSTGRES_URL
from tests.faults import CuttableProxy


def later() -> datetime:
    return utcnow() + timedelta(hours=1)


class Crash(BaseException):
    """The worker dies (nothing in the runner catches a BaseException, as with SIGKILL)."""


async def test_a_100000_record_job_writes_every_row_and_counts_them(empty_engine, tmp_path):
    total = 100_000
    text = jsonl([bakery(n, "BIG") for n in range(total)])
    job = await submit(empty_engine, tmp_path, text)
    config = fixed(1000, progress_interval_seconds=3600)

    final, events = await run_job(empty_engine, tmp_path, job, config)

    assert final is not None and final.status is JobStatus.COMPLETED
    assert final.counts == JobCounts(total, total, total, 0)
    assert await dbstate.count(empty_engine, "bakeries") == total
    keys = await keys_with_prefix(empty_engine, "BIG")
    assert len(keys) == total and set(keys.values()) == {1}
    lines = results(tmp_path, job)
    assert [line["line"] for line in lines] == list(range(1, total + 1))
    assert all(line["success"] and line["id"] for line in lines)
    assert file_of(tmp_path, job, "failed") == ""
    # The interval holds back every event after the first chunk's but the final one, the row's.
    assert [(e.counts.processed, e.final) for e in events.seen] == [(1000, False), (total, True)]
    assert (events.seen[-1].status, events.seen[-1].counts) == (final.status, final.counts)
    assert await jobs.get_job(empty_engine, job.id) == final


async def test_each_chunk_costs_the_same_few_statements_and_one_checkpoint(empty_engine, tmp_path):
    job = await submit(empty_engine, tmp_path, jsonl([bakery(n, "ST") for n in range(300)]))
    claimed = await claim(empty_engine, job, "w1")
    with count_statements(empty_engine) as log:
        await JobRunner(empty_engine, tmp_path, "w1", fixed(100)).run(claimed)
    on_jobs = [s for s in log.statements if "bulk_jobs" in s]
    # Per chunk: the external ids taken, one INSERT, one checkpoint UPDATE. At the end: the row
    # locked, then finished.
    assert sum(s.lstrip().upper().startswith("UPDATE BULK_JOBS") for s in on_jobs) == 3 + 1
    assert len(on_jobs) == 3 + 2
    assert log.count == 3 * 3 + 2, log


async def test_bad_lines_are_reported_by_line_and_only_they_are_in_the_failed_file(
    empty_engine, tmp_path
):
    lines = [
        bakery(1, "BL"),
        "{not json",
        {"name": "", "region": "CENTRAL", "externalId": "BL-3"},
        bakery(4, "BL"),
        "",
        {"name": "Odd", "region": "MOON", "externalId": "BL-6"},
        bakery(1, "BL"),  # the same key as line 1, in another chunk
        "[1, 2]",
        bakery(9, "BL"),
    ]
    job = await submit(empty_engine, tmp_path, jsonl(lines))
    final, _ = await run_job(empty_engine, tmp_path, job, fixed(3))

    assert final is not None and final.status is JobStatus.COMPLETED
    assert final.counts == JobCounts(8, 8, 3, 5)
    by_line = {line["line"]: line for line in results(tmp_path, job)}
    assert sorted(by_line) == [1, 2, 3, 4, 6, 7, 8, 9]
    failed = {
        n: [e["code"] for e in line["errors"]] for n, line in by_line.items() if not line["success"]
    }
    assert failed == {
        2: ["INVALID_VALUE"],
        3: ["INVALID_VALUE"],
        6: ["INVALID_VALUE"],
        7: ["DUPLICATE"],
        8: ["INVALID_VALUE"],
    }
    assert by_line[3]["errors"][0]["field"] == "name"
    source = jsonl(lines).splitlines()
    assert file_of(tmp_path, job, "failed").splitlines() == [source[n - 1] for n in sorted(failed)]
    assert await keys_with_prefix(empty_engine, "BL") == {"BL-1": 1, "BL-4": 1, "BL-9": 1}

    # The failed file, fixed, goes through as a job of its own.
    fixed_lines = [bakery(n, "BL") for n in (2, 3, 6, 7, 8)]
    again = await submit(empty_engine, tmp_path, jsonl(fixed_lines))
    done, _ = await run_job(empty_engine, tmp_path, again, fixed(3))
    assert done is not None and done.counts == JobCounts(5, 5, 5, 0)
    assert len(await keys_with_prefix(empty_engine, "BL")) == 8


async def test_a_csv_job_reports_failed_rows_in_a_csv_with_its_header(empty_engine, tmp_path):
    text = (
        "name,region,externalId\n"
        "Rye,CENTRAL,CSV-1\n"
        "Spelt,MOON,CSV-2\n"
        '"Two\nlines",NORTH_EAST,CSV-3\n'
        "Short,CENTRAL\n"
        ",CENTRAL,CSV-5\n"
    )
    job = await submit(empty_engine, tmp_path, text, file_format=FileFormat.CSV, total=5)
    final, _ = await run_job(empty_engine, tmp_path, job, fixed(2))

    assert final is not None and final.counts == JobCounts(5, 5, 2, 3)
    assert [(r["line"], r["success"]) for r in results(tmp_path, job)] == [
        (2, True), (3, False), (4, True), (6, False), (7, False),
    ]  # fmt: skip
    assert file_of(tmp_path, job, "failed") == (
        "name,region,externalId\nSpelt,MOON,CSV-2\nShort,CENTRAL\n,CENTRAL,CSV-5\n"
    )


async def test_update_upsert_and_delete_jobs_find_rows_by_id_and_external_id(
    empty_engine, tmp_path
):
    create = await submit(empty_engine, tmp_path, jsonl([bakery(n, "OP") for n in range(4)]))
    await run_job(empty_engine, tmp_path, create, fixed(10))
    ids = {line["line"]: line["id"] for line in results(tmp_path, create)}

    update = jsonl([{"id": ids[1], "name": "Renamed"}, {"id": 999_999, "name": "Nobody"}])
    job = await submit(empty_engine, tmp_path, update, operation=Operation.UPDATE)
    final, _ = await run_job(empty_engine, tmp_path, job, fixed(10))
    assert final is not None and final.counts == JobCounts(2, 2, 1, 1)
    assert results(tmp_path, job)[1]["errors"][0]["code"] == "NOT_FOUND"

    upsert = jsonl(
        [
            {"externalId": "OP-1", "name": "Upserted"},
            {"externalId": "OP-9", "name": "New", "region": "NORTH_WEST"},
        ]
    )
    job = await submit(empty_engine, tmp_path, upsert, operation=Operation.UPSERT)
    final, _ = await run_job(empty_engine, tmp_path, job, fixed(10))
    assert final is not None and final.counts == JobCounts(2, 2, 2, 0)

    csv = f"id\n{ids[3]}\n{ids[4]}\n"
    job = await submit(
        empty_engine, tmp_path, csv, operation=Operation.DELETE, file_format=FileFormat.CSV
    )
    final, _ = await run_job(empty_engine, tmp_path, job, fixed(10))
    assert final is not None and final.counts == JobCounts(2, 2, 2, 0)

    names = await dbstate.bakeries_named(empty_engine, "Renamed", "Upserted", "New")
    assert sorted(names) == ["New", "Renamed", "Upserted"]
    assert sorted(await keys_with_prefix(empty_engine, "OP")) == ["OP-0", "OP-1", "OP-9"]


async def test_cancel_mid_job_keeps_committed_chunks_and_reports_the_rest_not_processed(
    empty_engine, tmp_path
):
    lines = [bakery(n, "CX") for n in range(1, 11)]
    job = await submit(empty_engine, tmp_path, jsonl(lines))
    events = Events()

    async def cancel_after_second_chunk(event: JobProgress) -> None:
        await events(event)
        if event.counts.processed == 4:
            await jobs.request_cancel(empty_engine, job.id)

    claimed = await claim(empty_engine, job, "w1")
    runner = JobRunner(empty_engine, tmp_path, "w1", fixed(2), progress=cancel_after_second_chunk)
    final = await runner.run(claimed)

    assert final is not None and final.status is JobStatus.CANCELED
    assert final.counts == JobCounts(10, 4, 4, 0)
    assert sorted(await keys_with_prefix(empty_engine, "CX")) == ["CX-1", "CX-2", "CX-3", "CX-4"]
    outcome = [
        (r["line"], r["success"], [e["code"] for e in r["errors"]]) for r in results(tmp_path, job)
    ]
    assert outcome == [(n, True, []) for n in range(1, 5)] + [
        (n, False, ["NOT_PROCESSED"]) for n in range(5, 11)
    ]
    assert file_of(tmp_path, job, "unprocessed") == jsonl(lines[4:])
    assert [e.counts.processed for e in events.seen] == [2, 4, 4]
    assert events.seen[-1].final and events.seen[-1].status is JobStatus.CANCELED


async def test_a_job_resumed_after_a_crash_writes_every_record_once(empty_engine, tmp_path):
    lines = [bakery(n, "CR") for n in range(1, 26)]
    job = await submit(empty_engine, tmp_path, jsonl(lines))

    async def die_after_third_chunk(event: JobProgress) -> None:
        if event.counts.processed == 15:
            raise Crash()

    first = await claim(empty_engine, job, "w1")
    with pytest.raises(Crash):
        await JobRunner(empty_engine, tmp_path, "w1", fixed(5), progress=die_after_third_chunk).run(
            first
        )
    # What a crash between writing a chunk's lines and its commit leaves behind.
    with (tmp_path / job.id / "results.jsonl").open("a") as half_written:
        half_written.write('{"line": 16, "id": 99, "success": tr')

    # w1's lease has not run out: nobody else may take the job yet.
    assert await jobs.claim_job(empty_engine, "w2", 60.0, job.id) is None
    resumed = await claim(empty_engine, job, "w2", later=True)
    assert (resumed.counts.processed, resumed.attempts) == (15, 2)
    final = await JobRunner(empty_engine, tmp_path, "w2", fixed(5)).run(resumed)

    assert final is not None and final.counts == JobCounts(25, 25, 25, 0)
    keys = await keys_with_prefix(empty_engine, "CR")
    assert len(keys) == 25 and set(keys.values()) == {1}
    assert [(r["line"], r["success"]) for r in results(tmp_path, job)] == [
        (n, True) for n in range(1, 26)
    ]


async def test_a_worker_whose_lease_was_taken_over_stops_without_writing(empty_engine, tmp_path):
    lines = [bakery(n, "LS") for n in range(1, 21)]
    job = await submit(empty_engine, tmp_path, jsonl(lines))
    taken: list[Job] = []

    async def lose_the_lease_after_second_chunk(event: JobProgress) -> None:
        if event.counts.processed == 10 and not taken:
            taken.append(await claim(empty_engine, job, "w2", later=True))

    first = await claim(empty_engine, job, "w1")
    runner = JobRunner(
        empty_engine, tmp_path, "w1", fixed(5), progress=lose_the_lease_after_second_chunk
    )
    assert await runner.run(first) is None
    # w1's third chunk was rolled back: nothing past its second checkpoint.
    assert len(await keys_with_prefix(empty_engine, "LS")) == 10
    assert len(results(tmp_path, job)) == 10

    final = await JobRunner(empty_engine, tmp_path, "w2", fixed(5)).run(taken[0])
    assert final is not None and final.counts == JobCounts(20, 20, 20, 0)
    keys = await keys_with_prefix(empty_engine, "LS")
    assert len(keys) == 20 and set(keys.values()) == {1}
    assert [r["line"] for r in results(tmp_path, job)] == list(range(1, 21))


async def test_an_atomic_job_with_a_failure_leaves_the_database_as_it_was(engine, tmp_path):
    before = await dbstate.snapshot(engine)
    lines = [bakery(n, "AT") for n in range(1, 8)]
    lines[5] = {"name": "Bad", "region": "MOON", "externalId": "AT-6"}
    job = await submit(engine, tmp_path, jsonl(lines), options=BatchOptions(atomic=True))
    final, events = await run_job(engine, tmp_path, job, fixed(2))

    assert final is not None and final.status is JobStatus.FAILED
    assert final.error_code == "ALL_OR_NONE_ROLLED_BACK" and "line" in (final.error_message or "")
    assert final.counts == JobCounts(7, 7, 0, 7)
    assert await dbstate.snapshot(engine) == before
    codes = [[e["code"] for e in r["errors"]] for r in results(tmp_path, job)]
    assert codes[5] == ["INVALID_VALUE"]
    assert all(c == ["ALL_OR_NONE_ROLLED_BACK"] for i, c in enumerate(codes) if i != 5)
    # Nothing was written: the whole file is what must be fixed and sent again.
    assert file_of(tmp_path, job, "failed") == jsonl(lines)
    # Atomic progress counts nothing before the end (so they never go backwards).
    assert [e.counts.processed for e in events.seen] == [0, 0, 0, 0, 7]


async def test_an_atomic_job_without_failures_commits_everything(empty_engine, tmp_path):
    job = await submit(
        empty_engine, tmp_path, jsonl([bakery(n, "OK") for n in range(9)]),
        options=BatchOptions(atomic=True),
    )  # fmt: skip
    final, _ = await run_job(empty_engine, tmp_path, job, fixed(4))
    assert final is not None and final.status is JobStatus.COMPLETED
    assert final.counts == JobCounts(9, 9, 9, 0)
    assert len(await keys_with_prefix(empty_engine, "OK")) == 9
    assert len(results(tmp_path, job)) == 9


async def test_an_atomic_job_over_the_limit_is_refused_without_writing(empty_engine, tmp_path):
    job = await submit(
        empty_engine, tmp_path, jsonl([bakery(n, "BIGA") for n in range(6)]),
        options=BatchOptions(atomic=True),
    )  # fmt: skip
    final, _ = await run_job(empty_engine, tmp_path, job, fixed(2, max_atomic_records=5))
    assert final is not None and final.status is JobStatus.FAILED
    assert final.error_code == "ATOMIC_TOO_LARGE"
    assert "BATCHERY_JOBS_MAX_ATOMIC_RECORDS" in (final.error_message or "")
    assert await keys_with_prefix(empty_engine, "BIGA") == {}
    assert len(file_of(tmp_path, job, "unprocessed").splitlines()) == 6


async def test_continue_on_error_false_stops_the_job_at_its_first_failure(empty_engine, tmp_path):
    lines = [bakery(n, "SO") for n in range(1, 8)]
    lines[3] = {"name": "Bad", "region": "MOON", "externalId": "SO-4"}
    job = await submit(
        empty_engine, tmp_path, jsonl(lines), options=BatchOptions(continue_on_error=False)
    )
    final, _ = await run_job(empty_engine, tmp_path, job, fixed(3))
    assert final is not None and final.status is JobStatus.FAILED
    assert final.error_code == "STOPPED_AT_FAILURE" and "line 4" in (final.error_message or "")
    assert final.counts == JobCounts(7, 4, 3, 1)
    assert sorted(await keys_with_prefix(empty_engine, "SO")) == ["SO-1", "SO-2", "SO-3"]
    assert file_of(tmp_path, job, "unprocessed") == jsonl(lines[4:])
    assert [r["success"] for r in results(tmp_path, job)] == [True] * 3 + [False] * 4


async def test_a_validate_only_job_checks_every_record_and_writes_none(empty_engine, tmp_path):
    lines = [bakery(1, "VO"), {"name": "", "region": "CENTRAL"}]
    job = await submit(
        empty_engine, tmp_path, jsonl(lines), options=BatchOptions(validate_only=True)
    )
    final, _ = await run_job(empty_engine, tmp_path, job, fixed(1))
    assert final is not None and final.counts == JobCounts(2, 2, 1, 1)
    assert await keys_with_prefix(empty_engine, "VO") == {}


async def test_a_job_whose_file_cannot_be_read_fails_saying_why(empty_engine, tmp_path):
    text = "name,colour\nRye,red\n"
    job = await submit(empty_engine, tmp_path, text, file_format=FileFormat.CSV)
    final, _ = await run_job(empty_engine, tmp_path, job, fixed(2))
    assert final is not None and final.status is JobStatus.FAILED
    assert final.error_code == "INVALID_FILE" and "colour" in (final.error_message or "")


async def test_a_job_whose_files_are_gone_fails_once_and_for_all(empty_engine, tmp_path):
    # E.g. workers on machines that do not share BATCHERY_JOBS_DIR.
    job = await submit(empty_engine, tmp_path, jsonl([bakery(1, "GO")]))
    (tmp_path / job.id / "input.jsonl").unlink()
    (tmp_path / job.id).rmdir()
    final, _ = await run_job(empty_engine, tmp_path, job, fixed(2))
    assert final is not None and final.status is JobStatus.FAILED
    assert final.error_code == "INVALID_FILE" and "no such file" in (final.error_message or "")
    assert await jobs.claim_job(empty_engine, "w2", 60.0, job.id, now=later()) is None


async def test_a_claimed_canceling_job_is_finished_canceled(empty_engine, tmp_path: Path):
    job = await submit(empty_engine, tmp_path, jsonl([bakery(n, "CC") for n in range(3)]))
    claimed = await claim(empty_engine, job, "w1")
    await jobs.request_cancel(empty_engine, job.id)
    resumed = await claim(empty_engine, job, "w2", later=True)
    final = await JobRunner(empty_engine, tmp_path, "w2", fixed(2)).run(resumed)
    assert claimed.status is JobStatus.RUNNING
    assert final is not None and final.status is JobStatus.CANCELED
    assert final.counts == JobCounts(3, 0, 0, 0)
    assert len(file_of(tmp_path, job, "unprocessed").splitlines()) == 3


async def test_a_job_canceled_before_it_ran_lists_every_record_unprocessed(empty_engine, tmp_path):
    lines = [bakery(n, "NR") for n in range(3)]
    job = await submit(empty_engine, tmp_path, jsonl(lines))
    canceled = await jobs.request_cancel(empty_engine, job.id)
    assert canceled is not None and canceled.status is JobStatus.CANCELED
    await report_never_run(tmp_path, canceled)
    assert file_of(tmp_path, job, "unprocessed") == jsonl(lines)
    assert [(r["line"], r["errors"][0]["code"]) for r in results(tmp_path, job)] == [
        (1, "NOT_PROCESSED"), (2, "NOT_PROCESSED"), (3, "NOT_PROCESSED"),
    ]  # fmt: skip
    assert await jobs.claim_job(empty_engine, "w1", 60.0) is None


async def test_an_atomic_job_canceled_midway_writes_nothing(engine, tmp_path, backend):
    if backend == "sqlite":
        pytest.skip("on SQLite an atomic job holds the write lock: a cancel waits for its end")
    before = await dbstate.snapshot(engine)
    lines = [bakery(n, "AC") for n in range(1, 9)]
    job = await submit(engine, tmp_path, jsonl(lines), options=BatchOptions(atomic=True))
    events = Events()

    async def cancel_at_first_event(event: JobProgress) -> None:
        await events(event)
        if len(events.seen) == 1:
            await jobs.request_cancel(engine, job.id)

    claimed = await claim(engine, job, "w1")
    runner = JobRunner(engine, tmp_path, "w1", fixed(2), progress=cancel_at_first_event)
    final = await runner.run(claimed)

    assert final is not None and final.status is JobStatus.CANCELED
    assert final.counts == JobCounts(8, 0, 0, 0)
    assert await dbstate.snapshot(engine) == before
    assert file_of(tmp_path, job, "unprocessed") == jsonl(lines)
    assert {r["errors"][0]["code"] for r in results(tmp_path, job)} == {"NOT_PROCESSED"}


@asynccontextmanager
async def through_cuttable_proxy(
    databases: Any,
) -> AsyncIterator[tuple[CuttableProxy, AsyncEngine]]:
    """An engine on the test's schema reached through a proxy the test can cut."""
    url = make_url(POSTGRES_URL)
    proxy = await CuttableProxy.start(url.host or "127.0.0.1", url.port or 5432)
    through_proxy = url.set(host="127.0.0.1", port=proxy.port)
    cut_off = create_async_engine(
        through_proxy.render_as_string(hide_password=False),
        connect_args={"server_settings": {"search_path": databases.schemas[-1]}},
    )
    try:
        yield proxy, cut_off
    finally:
        await proxy.close()
        await cut_off.dispose()


async def test_a_database_blip_mid_job_hands_it_back_to_resume_with_every_record_once(
    empty_engine, databases, backend, tmp_path
):
    if backend != "postgresql":
        pytest.skip("the outage is a cut TCP proxy in front of PostgreSQL")
    async with through_cuttable_proxy(databases) as (proxy, cut_off):
        job = await submit(empty_engine, tmp_path, jsonl([bakery(n, "BL") for n in range(20)]))

        async def blip_after_second_chunk(event: JobProgress) -> None:
            if event.counts.processed == 10:
                await proxy.cut()  # the open connections die...
                await proxy.restore()  # ...and the database is back for new ones

        claimed = await claim(cut_off, job, "w1")
        runner = JobRunner(cut_off, tmp_path, "w1", fixed(5), progress=blip_after_second_chunk)
        assert await runner.run(claimed) is None

    # Not FAILED: handed back, the attempt counted, the fault said while it waits.
    waiting = await jobs.get_job(empty_engine, job.id)
    assert waiting is not None and waiting.status is JobStatus.RUNNING
    assert (waiting.counts.processed, waiting.attempts) == (10, 1)
    assert waiting.error_code == "DATABASE_UNAVAILABLE"
    assert waiting.error_message is not None and "after 10 of 20 records" in waiting.error_message
    # A reaper takes it once the wait (the fault's Retry-After) is over, not a lease later.
    soon = utcnow() + timedelta(seconds=UNAVAILABLE_RETRY_AFTER_SECONDS + 1)
    resumed = await jobs.claim_job(empty_engine, "w2", 60.0, now=soon)
    assert resumed is not None and resumed.id == job.id and resumed.attempts == 2
    final = await JobRunner(empty_engine, tmp_path, "w2", fixed(5)).run(resumed)
    assert final is not None and final.status is JobStatus.COMPLETED
    assert final.counts == JobCounts(20, 20, 20, 0)
    assert (final.error_code, final.error_message) == (None, None)
    keys = await keys_with_prefix(empty_engine, "BL")
    assert len(keys) == 20 and set(keys.values()) == {1}
    assert [r["line"] for r in results(tmp_path, job)] == list(range(1, 21))


async def test_a_job_handed_back_by_outages_fails_after_its_attempts_saying_the_last(
    empty_engine, tmp_path
):
    job = await submit(empty_engine, tmp_path, jsonl([bakery(1, "OA")]))
    for attempt in range(1, RunnerConfig().max_attempts + 1):
        await claim(empty_engine, job, "w1")
        told = f"attempt {attempt}: the database was unavailable"
        assert await jobs.release_lease(
            empty_engine, job.id, "w1", error_code="DATABASE_UNAVAILABLE", error_message=told
        )
    final, _ = await run_job(empty_engine, tmp_path, job, fixed(5))
    assert final is not None and final.status is JobStatus.FAILED
    assert final.error_code == "TOO_MANY_ATTEMPTS"
    assert final.error_message is not None
    assert final.error_message.endswith("the last: attempt 5: the database was unavailable")
    assert await keys_with_prefix(empty_engine, "OA") == {}


async def test_a_database_outage_mid_job_ends_in_a_resume_with_every_record_once(
    empty_engine, databases, backend, tmp_path
):
    if backend != "postgresql":
        pytest.skip("the outage is a cut TCP proxy in front of PostgreSQL")
    async with through_cuttable_proxy(databases) as (proxy, cut_off):
        job = await submit(empty_engine, tmp_path, jsonl([bakery(n, "DB") for n in range(20)]))

        async def cut_after_second_chunk(event: JobProgress) -> None:
            if event.counts.processed == 10:
                await proxy.cut()

        claimed = await claim(cut_off, job, "w1")
        runner = JobRunner(cut_off, tmp_path, "w1", fixed(5), progress=cut_after_second_chunk)
        # Its third chunk fails, and so does handing it back: the job keeps its lease.
        assert await runner.run(claimed) is None

    stranded = await jobs.get_job(empty_engine, job.id)
    assert stranded is not None and stranded.status is JobStatus.RUNNING
    assert stranded.counts.processed == 10
    # Until the lease runs out, nobody resumes it; then a reaper does.
    assert await jobs.claim_job(empty_engine, "w2", 60.0) is None
    resumed = await claim(empty_engine, job, "w2", later=True)
    final = await JobRunner(empty_engine, tmp_path, "w2", fixed(5)).run(resumed)
    assert final is not None and final.counts == JobCounts(20, 20, 20, 0)
    keys = await keys_with_prefix(empty_engine, "DB")
    assert len(keys) == 20 and set(keys.values()) == {1}
    assert [r["line"] for r in results(tmp_path, job)] == list(range(1, 21))
