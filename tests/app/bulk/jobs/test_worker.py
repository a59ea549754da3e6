"""The worker: a job runs only once claimed, duplicate messages are dropped, the reaper resumes
jobs whose worker died, concurrency is respected, a stopping worker hands its jobs back, expired
jobs lose their files. On SQLite and PostgreSQL; the runner here is a stand-in that records what
it was given and writes the row through the data layer as the real one does."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from app.bulk.jobs.config import JobsConfig
from app.bulk.jobs.model import FileFormat, Job, JobCounts, JobSpec, JobStatus
from app.bulk.jobs.runner import JobRunner, RunnerConfig
from app.bulk.jobs.worker import JobWorker, worker_id
from app.bulk.model import Operation
from app.db import jobs as rows
from app.db.models import utcnow
from app.db.transactions import write_connection
from tests.app.bulk.jobs.jobkit import bakery, jsonl, submit

SPEC = JobSpec("bakeries", Operation.CREATE, FileFormat.JSONL)


class Runner:
    """Completes each job it is given, or waits at `gate` first (a long job)."""

    def __init__(self, engine: AsyncEngine, *, gate: asyncio.Event | None = None) -> None:
        self.engine = engine
        self.gate = gate
        self.ran: list[tuple[str, str, int]] = []
        self.started = asyncio.Condition()

    async def __call__(self, job: Job, worker: str) -> None:
        async with self.started:
            self.ran.append((job.id, worker, job.attempts))
            self.started.notify_all()
        if self.gate is not None:
            await self.gate.wait()
        counts = JobCounts(job.counts.total, job.counts.total, job.counts.total, 0)
        async with write_connection(self.engine) as conn, conn.begin():
            done = await rows.finish_job(
                conn, job.id, worker, JobStatus.COMPLETED, counts, results_bytes=0, failed_bytes=0
            )
        assert done is not None, "the worker held the job"

    async def wait_started(self, count: int) -> None:
        async with self.started:
            await asyncio.wait_for(self.started.wait_for(lambda: len(self.ran) >= count), 30)


def config(tmp_path: Path, **changes: object) -> JobsConfig:
    values: dict[str, object] = {"jobs_dir": tmp_path / "jobs", "lease_seconds": 60.0}
    values.update(changes)
    return JobsConfig(**values)  # type: ignore[arg-type]


async def make(engine: AsyncEngine, total: int = 3) -> Job:
    return await rows.create_job(engine, SPEC, "key:a", total, utcnow() + timedelta(days=1))


async def status(engine: AsyncEngine, job_id: str) -> JobStatus:
    job = await rows.get_job(engine, job_id)
    assert job is not None
    return job.status


def test_a_worker_id_names_the_process():
    import os

    name = worker_id()
    assert f":{os.getpid()}:" in name
    assert len(name) <= 64
    assert name != worker_id()


async def test_a_message_runs_its_job_once_claimed(empty_engine, tmp_path):
    runner = Runner(empty_engine)
    worker = JobWorker(empty_engine, config(tmp_path), runner, name="w1")
    job = await make(empty_engine)
    await worker.run_job(job.id)
    assert runner.ran == [(job.id, "w1", 1)]
    assert await status(empty_engine, job.id) is JobStatus.COMPLETED


async def test_a_second_message_for_a_held_job_is_dropped(empty_engine, tmp_path):
    gate = asyncio.Event()
    runner = Runner(empty_engine, gate=gate)
    one = JobWorker(empty_engine, config(tmp_path), runner, name="w1")
    two = JobWorker(empty_engine, config(tmp_path), runner, name="w2")
    job = await make(empty_engine)
    first = asyncio.create_task(one.run_job(job.id))
    await runner.wait_started(1)
    await two.run_job(job.id)  # returns at once: w1 holds the lease
    gate.set()
    await first
    assert [worker for _, worker, _ in runner.ran] == ["w1"]


async def test_the_reaper_resumes_a_job_whose_worker_died(empty_engine, tmp_path):
    job = await make(empty_engine)
    # A worker claimed it and died: its lease runs out.
    dead = await rows.claim_job(empty_engine, "dead:1:x", 0.001, job.id)
    assert dead is not None
    runner = Runner(empty_engine)
    worker = JobWorker(empty_engine, config(tmp_path), runner, name="w2")
    assert await worker.reap() == 1
    await runner.wait_started(1)
    await worker.stop()
    assert runner.ran == [(job.id, "w2", 2)]


async def test_a_worker_runs_no_more_jobs_at_once_than_its_concurrency(empty_engine, tmp_path):
    gate = asyncio.Event()
    runner = Runner(empty_engine, gate=gate)
    worker = JobWorker(empty_engine, config(tmp_path, worker_concurrency=2), runner, name="w")
    made = [await make(empty_engine) for _ in range(3)]
    assert await worker.reap() == 2
    await runner.wait_started(2)
    assert await worker.reap() == 0  # full
    assert await status(empty_engine, made[2].id) is JobStatus.CREATED
    gate.set()
    await worker.join()
    assert await worker.reap() == 1
    await runner.wait_started(3)
    await worker.stop()
    assert sorted(job_id for job_id, _, _ in runner.ran) == sorted(job.id for job in made)


async def test_a_stopping_worker_hands_its_running_job_back_at_once(empty_engine, tmp_path):
    runner = Runner(empty_engine, gate=asyncio.Event())  # never opens: a long job
    worker = JobWorker(empty_engine, config(tmp_path, lease_seconds=3600), runner, name="w1")
    job = await make(empty_engine)
    assert await worker.reap() == 1
    await runner.wait_started(1)
    await worker.stop()
    assert worker.running == frozenset()
    # Without waiting out the hour's lease, another worker takes it.
    other = Runner(empty_engine)
    taker = JobWorker(empty_engine, config(tmp_path), other, name="w2")
    await taker.run_job(job.id)
    # The hand-back was clean: the first claim is not counted as an attempt.
    assert other.ran == [(job.id, "w2", 1)]
    assert await status(empty_engine, job.id) is JobStatus.COMPLETED


async def test_stop_returns_only_once_a_messaged_job_is_handed_back(empty_engine, tmp_path):
    # A job started by its queue message (not the reaper) runs in the broker's task.
    runner = Runner(empty_engine, gate=asyncio.Event())
    worker = JobWorker(empty_engine, config(tmp_path, lease_seconds=3600), runner, name="w1")
    job = await make(empty_engine)
    message = asyncio.create_task(worker.run_job(job.id))
    await runner.wait_started(1)
    await worker.stop()
    # Written before stop() returned: a process exiting right after loses no hand-back.
    assert message.done() and message.exception() is None
    held = await rows.get_job(empty_engine, job.id)
    assert held is not None and held.lease_expires_at is not None
    assert held.lease_expires_at <= utcnow() and held.attempts == 0


async def test_stop_waits_for_a_message_caught_claiming_its_job(empty_engine, tmp_path):
    runner = Runner(empty_engine, gate=asyncio.Event())
    worker = JobWorker(empty_engine, config(tmp_path, lease_seconds=3600), runner, name="w1")
    job = await make(empty_engine)
    message = asyncio.create_task(worker.run_job(job.id))
    await asyncio.sleep(0)  # the message is claiming its job (a write) when the stop comes
    await worker.stop()
    # Its claim and hand-back were both written before stop() returned: nothing after it.
    assert message.done() and runner.ran == []
    again = await rows.claim_job(empty_engine, "w2", 60.0, job.id)
    assert again is not None and again.attempts == 1


async def test_graceful_restarts_never_use_up_a_jobs_attempts(empty_engine, tmp_path):
    jobs_dir = tmp_path / "jobs"
    job = await submit(empty_engine, jobs_dir, jsonl([bakery(n, "GR") for n in range(1, 4)]))
    seen = []
    for restart in range(RunnerConfig().max_attempts + 2):
        runner = Runner(empty_engine, gate=asyncio.Event())  # a long job, stopped midway
        worker = JobWorker(empty_engine, config(tmp_path), runner, name=f"w{restart}")
        assert await worker.reap() == 1
        await runner.wait_started(1)
        await worker.stop()  # SIGTERM: the lease is handed back
        seen.extend(attempts for _, _, attempts in runner.ran)
    assert seen == [1] * (RunnerConfig().max_attempts + 2)

    claimed = await rows.claim_job(empty_engine, "last", 60.0, job.id)
    assert claimed is not None and claimed.attempts == 1
    final = await JobRunner(empty_engine, jobs_dir, "last", RunnerConfig(fsync=False)).run(claimed)
    assert final is not None and final.status is JobStatus.COMPLETED
    assert final.counts == JobCounts(3, 3, 3, 0)


async def test_a_stopped_worker_takes_no_new_job(empty_engine, tmp_path):
    runner = Runner(empty_engine)
    worker = JobWorker(empty_engine, config(tmp_path), runner, name="w1")
    await worker.stop()
    job = await make(empty_engine)
    await worker.run_job(job.id)
    assert await worker.reap() == 0
    assert runner.ran == []


async def test_the_sweep_removes_the_files_of_expired_jobs_and_marks_them(empty_engine, tmp_path):
    cfg = config(tmp_path)
    old = await rows.create_job(empty_engine, SPEC, "key:a", 1, utcnow() - timedelta(seconds=1))
    kept = await rows.create_job(empty_engine, SPEC, "key:a", 1, utcnow() + timedelta(days=1))
    runner = Runner(empty_engine)
    worker = JobWorker(empty_engine, cfg, runner, name="w")
    for job in (old, kept):
        await worker.run_job(job.id)
        (cfg.jobs_dir / job.id).mkdir(parents=True)
        (cfg.jobs_dir / job.id / "results.jsonl").write_text("{}\n")
    assert await worker.sweep() == 1
    assert not (cfg.jobs_dir / old.id).exists()
    assert (cfg.jobs_dir / kept.id / "results.jsonl").exists()
    assert await status(empty_engine, old.id) is JobStatus.EXPIRED
    assert await status(empty_engine, kept.id) is JobStatus.COMPLETED
    assert await worker.sweep() == 0


async def test_messages_waiting_for_a_slot_when_the_worker_stops_take_nothing(
    empty_engine, tmp_path
):
    runner = Runner(empty_engine, gate=asyncio.Event())  # never opens
    worker = JobWorker(empty_engine, config(tmp_path, worker_concurrency=1), runner, name="w1")
    first, second = await make(empty_engine), await make(empty_engine)
    running = asyncio.create_task(worker.run_job(first.id))
    await runner.wait_started(1)
    waiting = asyncio.create_task(worker.run_job(second.id))  # no slot: it waits
    await worker.stop()
    await asyncio.gather(running, waiting)
    assert [job_id for job_id, _, _ in runner.ran] == [first.id]
    assert await status(empty_engine, second.id) is JobStatus.CREATED
    left = await rows.get_job(empty_engine, second.id)
    assert left is not None and left.lease_owner is None
