"""`benchmarks/jobs.py` works: a tiny job through a real `batchery worker`, and the synchronous
requests it is compared with, give a row with both rates and the worker's memory. (How fast is
the benchmark's business, not this test's.)"""

from __future__ import annotations

import json

import pytest

from tests.benchmarks.bench_process import run_bench
from tests.redis import REDIS_URL, redis_available


@pytest.mark.skipif(not redis_available(), reason=f"no Redis at {REDIS_URL}")
def test_a_tiny_jobs_run_produces_its_row(tmp_path):
    run_bench(
        "benchmarks.jobs",
        {
            "BENCH_JOBS_RECORDS": "500",
            "BENCH_JOBS_SYNC_RECORDS": "400",
            "BENCH_JOBS_BACKENDS": "sqlite",
            "BENCH_REDIS_URL": REDIS_URL,
            "BENCH_OUTPUT": str(tmp_path),
        },
    )
    (row,) = json.loads((tmp_path / "jobs-latest.json").read_text())
    assert (row["backend"], row["records"], row["sync_records"]) == ("sqlite", 500, 400)
    assert row["job_records_per_second"] > 0 and row["sync_records_per_second"] > 0
    assert row["worker_rss_before_mib"] > 0 and row["within_rss_budget"]
    assert "| sqlite | 500 |" in (tmp_path / "jobs-latest.md").read_text()
