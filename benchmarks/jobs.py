"""Bulk jobs: records per second of one big JSONL job run by a `batchery worker`, against the same
kind of records sent as synchronous 200-record bulk requests (`POST /api/bakeries/bulk`), and the
worker's peak RSS growth over the job (issue 10: under 100 MB for 1,000,000 records). On SQLite
and on PostgreSQL when it answers; needs Redis (the worker's queue).

    .venv/bin/python -m benchmarks.jobs            # 1,000,000 records (several minutes a backend)
    BENCH_QUICK=1 .venv/bin/python -m benchmarks.jobs    # 20,000: a smoke run

Settings (environment): BENCH_QUICK, BENCH_JOBS_RECORDS (the job's size), BENCH_JOBS_SYNC_RECORDS
(records sent as synchronous requests; default the job's size up to 100,000: the rate is steady
long before that), BENCH_JOBS_BACKENDS (sqlite,postgresql), BENCH_REDIS_URL, BENCH_OUTPUT.
The rates are wall-clock on whatever else the machine is doing: compare the two, not runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import orjson
from sqlalchemy.engine import make_url

from app.bulk.jobs.config import JobsConfig
from app.bulk.jobs.model import FileFormat, JobSpec, JobStatus
from app.bulk.jobs.service import JobsService
from app.bulk.model import Operation
from app.db.engine import create_engine
from tests.live.killable import KillableServer, KillableWorker

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get(
    "BATCHERY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
BATCH = 200
RSS_BUDGET_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class Result:
    backend: str
    records: int
    job_seconds: float
    job_records_per_second: float
    sync_records: int
    sync_seconds: float
    sync_records_per_second: float
    worker_rss_before_mib: float
    worker_peak_growth_mib: float
    within_rss_budget: bool


def write_jsonl(path: Path, count: int, prefix: str) -> None:
    with path.open("wb") as handle:
        for start in range(0, count, 10_000):
            handle.write(
                b"".join(line(n, prefix) for n in range(start, min(start + 10_000, count)))
            )


def line(n: int, prefix: str) -> bytes:
    record = {"name": f"{prefix} {n}", "region": "CENTRAL", "externalId": f"{prefix}-{n}"}
    return orjson.dumps(record) + b"\n"


async def chunks(path: Path, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(size):
            yield block


def memory(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]
    peak = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]
    return rss, peak


def reset_peak(pid: int) -> None:
    """Make VmHWM start from the current RSS (Linux: writing 5 to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@asynccontextmanager
async def database(backend: str, workdir: Path) -> AsyncIterator[str]:
    """A URL of an empty database of `backend` (PostgreSQL: a schema of its own, via a role
    whose search path it is, dropped afterwards)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
        return
    from tests.live.process import postgres_role

    async with postgres_role(POSTGRES_URL) as (url, _role):
        yield url


def reachable(url: str, default_port: int) -> bool:
    parts = make_url(url.replace("redis://", "redis+x://", 1)) if url else None
    host = (parts.host if parts else None) or "127.0.0.1"
    try:
        with socket.create_connection((host, (parts.port if parts else None) or default_port), 1):
            return True
    except OSError:
        return False


async def measure(backend: str, records: int, sync_records: int, redis_url: str) -> Result:
    workdir = Path(tempfile.mkdtemp(prefix=f"batchery-jobs-bench-{backend}-"))
    key_prefix = f"bench-{uuid.uuid4().hex}"
    try:
        async with database(backend, workdir) as url:
            env = {
                "BATCHERY_DATABASE_URL": url,
                "BATCHERY_DATA_DIR": str(workdir / "data"),
                "BATCHERY_JOBS_DIR": str(workdir / "jobs"),
                "BATCHERY_JOBS_BROKER": redis_url,
                "BATCHERY_JOBS_KEY_PREFIX": key_prefix,
                "BATCHERY_JOBS_WORKER_CONCURRENCY": "1",
                "BATCHERY_JOBS_MAX_RECORDS": str(max(records, 1)),
                "BATCHERY_RATE_LIMIT_ENABLED": "false",
            }
            api = KillableServer(env).start()  # migrates; serves the synchronous requests
            worker = KillableWorker(env).start()
            engine = create_engine(url)
            service = JobsService(
                engine,
                JobsConfig(
                    jobs_dir=workdir / "jobs",
                    broker_url=redis_url,
                    key_prefix=key_prefix,
                    max_records=max(records, 1),
                ),
            )
            try:
                await service.start()
                job_seconds, rss_before, growth = await run_job(service, worker, workdir, records)
                sync_seconds = send_sync(api.url, sync_records)
            finally:
                await service.stop()
                worker.stop()
                api.stop()
                await engine.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return Result(
        backend=backend,
        records=records,
        job_seconds=round(job_seconds, 2),
        job_records_per_second=round(records / job_seconds, 1),
        sync_records=sync_records,
        sync_seconds=round(sync_seconds, 2),
        sync_records_per_second=round(sync_records / sync_seconds, 1) if sync_records else 0.0,
        worker_rss_before_mib=round(rss_before / 2**20, 1),
        worker_peak_growth_mib=round(growth / 2**20, 1),
        within_rss_budget=growth < RSS_BUDGET_BYTES,
    )


async def run_job(
    service: JobsService, worker: KillableWorker, workdir: Path, records: int
) -> tuple[float, int, int]:
    """The job's running time (its row's started_at to finished_at), the worker's RSS before,
    and how far its peak rose above that."""
    source = workdir / "records.jsonl"
    write_jsonl(source, records, "job")
    rss_before, _ = memory(worker.pid)
    reset_peak(worker.pid)  # VmHWM from here
    spec = JobSpec("bakeries", Operation.CREATE, FileFormat.JSONL)
    job = await service.submit(spec, chunks(source), "bench")
    async for event in service.watch(job.id):
        if event.final:
            break
    _, peak = memory(worker.pid)
    done = await service.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED, done
    assert done.counts.succeeded == records, done.counts
    assert done.started_at is not None and done.finished_at is not None
    return (done.finished_at - done.started_at).total_seconds(), rss_before, peak - rss_before


def send_sync(base_url: str, count: int) -> float:
    """`count` records as consecutive 200-record CREATE requests on one connection."""
    started = time.perf_counter()
    with httpx.Client(base_url=base_url, timeout=120) as client:
        for start in range(0, count, BATCH):
            records = [
                {"data": orjson.loads(line(n, "sync"))}
                for n in range(start, min(start + BATCH, count))
            ]
            answer = client.post(
                "/api/bakeries/bulk", json={"operation": "CREATE", "records": records}
            )
            answer.raise_for_status()
    return time.perf_counter() - started


def settings(env: Mapping[str, str]) -> tuple[int, int, list[str], str, Path]:
    quick = env.get("BENCH_QUICK", "") not in ("", "0")
    records = int(env.get("BENCH_JOBS_RECORDS", "20000" if quick else "1000000"))
    sync_records = int(env.get("BENCH_JOBS_SYNC_RECORDS", str(min(records, 100_000))))
    backends = [b.strip() for b in env.get("BENCH_JOBS_BACKENDS", "sqlite,postgresql").split(",")]
    redis_url = env.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    output = Path(env.get("BENCH_OUTPUT", str(ROOT / "benchmarks" / "results")))
    return records, sync_records, backends, redis_url, output


def rows(results: list[Result]) -> Iterator[str]:
    yield (
        "| backend | job records | job records/s | sync records | sync records/s (200/request) "
        "| worker RSS before | peak growth |"
    )
    yield "|---|---:|---:|---:|---:|---:|---:|"
    for r in results:
        yield (
            f"| {r.backend} | {r.records:,} | {r.job_records_per_second:,.0f} | "
            f"{r.sync_records:,} | {r.sync_records_per_second:,.0f} | "
            f"{r.worker_rss_before_mib:.0f} MiB | {r.worker_peak_growth_mib:.1f} MiB"
            f"{'' if r.within_rss_budget else ' (OVER 100 MB)'} |"
        )


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    records, sync_records, backends, redis_url, output = settings(env)
    if not reachable(redis_url, 6379):
        print(f"bench jobs: skipped, no Redis at {redis_url} (the worker's queue)")
        return 0
    results = []
    for backend in backends:
        if backend == "postgresql" and not reachable(POSTGRES_URL, 5432):
            print(f"bench jobs: postgresql skipped, nothing answers at {POSTGRES_URL}")
            continue
        print(f"bench jobs: {backend}: a {records:,}-record job, {sync_records:,} sync records")
        result = asyncio.run(measure(backend, records, sync_records, redis_url))
        print(f"bench jobs: {json.dumps(asdict(result))}")
        results.append(result)
    table = "\n".join(rows(results))
    print("\n" + table)
    output.mkdir(parents=True, exist_ok=True)
    (output / "jobs-latest.md").write_text(table + "\n")
    (output / "jobs-latest.json").write_text(
        json.dumps([asdict(result) for result in results], indent=2)
    )
    return 0 if all(result.within_rss_budget for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
