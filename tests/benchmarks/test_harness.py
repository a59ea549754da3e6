"""`make bench` itself works: a one-second run of one scenario against a real Batchery server
produces a row. (Nothing here looks at how fast anything is: that is the benchmark's job.)"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from benchmarks.report import Row, Run, markdown, target_values
from benchmarks.run import _problem
from benchmarks.scenarios import all_scenarios, large_upload, multipart_batch
from tests.benchmarks.bench_process import run_bench
from tests.conftest import POSTGRES_UP, POSTGRES_URL
from tests.live.process import plain_dsn


def tiny_run(tmp_path: Path, **settings: str) -> dict[str, Any]:
    completed = run_bench(
        "benchmarks.run",
        {
            "BENCH_SERVERS": "batchery",
            "BENCH_SCENARIOS": "hello,small",
            "BENCH_BACKENDS": "sqlite",
            "BENCH_SECONDS": "1",
            "BENCH_ROUNDS": "1",
            "BENCH_WARMUP": "0",
            "BENCH_SEED": "3x2",
            "BENCH_CONNECTIONS": "2",
            "BENCH_PIN": "0",
            "BENCH_OUTPUT": str(tmp_path),
            **settings,
        },
    )
    results: dict[str, Any] = json.loads((tmp_path / "latest.json").read_text())
    results["stdout"] = completed.stdout
    return results


def test_a_tiny_run_against_batchery_produces_its_row(tmp_path):
    results = tiny_run(tmp_path)
    rows = {(row["scenario"], row["server"]): row for row in results["rows"]}
    assert set(rows) == {("hello", "batchery"), ("small", "batchery")}
    hello, small = rows[("hello", "batchery")], rows[("small", "batchery")]
    assert hello["failed"] is None and small["failed"] is None
    assert hello["runs"][0]["requests"] > 0 and hello["runs"][0]["failures"] == 0
    assert hello["sql_per_request"] == 0
    assert small["sql_per_request"] == 2  # bakeries, then their orders: one statement per level
    table = (tmp_path / "latest.md").read_text()
    assert "| hello | batchery |" in table and "| small | batchery |" in table


@pytest.mark.skipif(not POSTGRES_UP, reason=f"PostgreSQL not reachable at {POSTGRES_URL}")
def test_on_postgresql_the_floor_reads_through_asyncpg_and_the_database_is_dropped(tmp_path):
    results = tiny_run(
        tmp_path,
        BENCH_BACKENDS="postgresql",
        BENCH_SERVERS="batchery,floor",
        BENCH_SCENARIOS="small,deep,batch20,scale",
        BENCH_POSTGRES_URL=POSTGRES_URL,
        BENCH_SCALE_WORKERS="1,2",
    )
    rows = {(row["scenario"], row["server"]): row for row in results["rows"]}
    # Only the query scenarios run on PostgreSQL; both servers answer them with the same SQL
    # statement count (the floor counts its asyncpg fetches), and the same data (else the run
    # would have warned).
    assert set(rows) == {(s, server) for s in ("small", "deep") for server in ("batchery", "floor")}
    assert {row["backend"] for row in rows.values()} == {"postgresql"}
    assert all(row["failed"] is None and row["runs"][0]["handled"] > 0 for row in rows.values())
    assert rows[("small", "floor")]["sql_per_request"] == 2
    assert rows[("deep", "floor")]["sql_per_request"] == 4
    assert rows[("deep", "batchery")]["sql_per_request"] == 4
    assert "answer" not in results["stdout"]  # "WARNING: the servers answer ... differently"
    assert "big CPU" in results["targets"]["postgresql"]
    table = (tmp_path / "latest.md").read_text()
    assert "### PostgreSQL" in table
    # The scale scenario: `batchery serve --workers 1` and `--workers 2` under small and big.
    scale = {(row["scenario"], row["workers"]): row for row in results["scale"]}
    assert set(scale) == {(s, n) for s in ("small", "big") for n in (1, 2)}
    assert all(row["runs"][0]["requests"] > 0 for row in scale.values())
    assert all(row["runs"][0]["batchery_cpu"] > 0 for row in scale.values())
    assert scale[("big", 2)]["connections"] == 2 * scale[("big", 1)]["connections"]
    assert "### Scale: Batchery workers on PostgreSQL" in table

    async def bench_databases() -> list[str]:
        admin = await asyncpg.connect(plain_dsn(POSTGRES_URL))
        try:
            names = await admin.fetch("SELECT datname FROM pg_database")
        finally:
            await admin.close()
        return [r["datname"] for r in names if r["datname"].startswith("batchery_bench_")]

    name = re.search(r"dropping the PostgreSQL database (\w+)", results["stdout"])
    assert name is not None
    assert name.group(1) not in asyncio.run(bench_databases())


def test_answers_that_do_not_count_are_reported_with_their_reason():
    batch = next(s for s in all_scenarios() if s.name == "batch20")
    hello = next(s for s in all_scenarios() if s.name == "hello")
    refused = b'{"errors":[{"message":"The body must be a JSON object."}]}'
    assert _problem(400, refused, batch) == "400 The body must be a JSON object."
    assert _problem(200, b'{"data":{"__typename":"Query"}}', hello) is None
    assert _problem(200, b'{"data":null,"errors":[{"message":"boom"}]}', hello) == "200 boom"
    assert _problem(200, b"[" + b'{"data":{}},' * 19 + b'{"data":{}}]', batch) is None
    assert _problem(200, b'[{"data":{}}]', batch) == "200, 1 answers to 20 operations"
    assert _problem(502, b"<html>", hello) == "502, not JSON: b'<html>'"


def test_failed_scenarios_show_in_the_table_and_leave_targets_unmeasured():
    rows = {
        ("hello", "batchery"): Row("hello", "batchery", 1, runs=[Run(1000, 1.0, 1, 2, 0, 0.2)]),
        ("hello", "baseline"): Row("hello", "baseline", 1, runs=[Run(250, 1.0, 4, 9, 0, 0.9)]),
        ("batch20", "batchery"): Row("batch20", "batchery", 20, failed="400 not a batch"),
    }
    table = markdown(rows, ["hello", "batch20"], ["batchery", "baseline"])
    assert "| batch20 | batchery | failed: 400 not a batch |" in table
    assert "| hello | batchery | 1,000.0 | 1,000.0 |" in table
    values = target_values(rows)
    assert values["hello throughput"] == 4.0
    assert values["batch of 20"] is None


def test_multipart_bodies_follow_the_spec():
    body = multipart_batch(2).body
    assert body.index(b'name="operations"') < body.index(b'name="map"') < body.index(b'name="0"')
    assert b'{"0":["0.variables.file"],"1":["1.variables.file"]}' in body
    upload = large_upload(3)
    assert upload.length == sum(len(chunk) for chunk in upload.stream())
    assert upload.headers["Apollo-Require-Preflight"]


def test_a_server_that_finished_nothing_gives_no_ratio_and_the_table_still_prints():
    idle = Run(requests=0, seconds=2.0, p50_ms=0, p99_ms=0, failures=0, cpu_seconds=0.1)
    busy = Run(requests=100, seconds=2.0, p50_ms=5, p99_ms=9, failures=0, cpu_seconds=0.5)
    rows = {
        ("deep", "batchery"): Row("deep", "batchery", 1, runs=[busy]),
        ("deep", "baseline"): Row("deep", "baseline", 1, runs=[idle]),
    }
    from benchmarks.report import ratio

    assert ratio(rows[("deep", "batchery")], rows[("deep", "baseline")], "rps") is None
    table = markdown(rows, ["deep"], ["batchery", "baseline"])
    assert "deep" in table


def test_cpu_per_request_divides_by_what_the_server_finished_and_leftovers_count_for_throughput():
    # wrk saw 10 answers in 2 s; the server finished 8 more (in flight when wrk stopped) by 2.5 s.
    slow = Run(10, 2.0, 900, 1000, 0, cpu_seconds=1.8, handled=18, busy_seconds=2.5)
    assert slow.cpu_ms == 100.0
    assert slow.rps == 18 / 2.5
    # Without a server-side count, wrk's is all there is.
    assert Run(10, 2.0, 900, 1000, 0, cpu_seconds=1.0).cpu_ms == 100.0
    assert Run(10, 2.0, 900, 1000, 0, cpu_seconds=1.0).rps == 5.0
    # No leftovers: wrk's window stands.
    assert Run(40, 2.0, 40, 90, 0, cpu_seconds=1.0, handled=40).rps == 20.0


def test_the_request_counter_counts_graphql_requests_the_app_finished():
    from starlette.testclient import TestClient

    from benchmarks.common import CountRequests, Resources

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    resources = Resources(settings=None, engine=None, reader=None)  # type: ignore[arg-type]
    client = TestClient(CountRequests(app, {"resources": resources}))
    client.post("/graphql", content=b"{}")
    client.post("/graphql", content=b"{}")
    client.get("/healthz")
    assert resources.requests == [2]
