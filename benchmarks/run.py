"""`make bench`: Batchery, stock Strawberry and the no-GraphQL floor, under the same load, on
SQLite and on PostgreSQL.

    make bench                      # the full run (several minutes)
    make bench BENCH_QUICK=1        # a smoke run, a few minutes

Every setting is an environment variable (see docs/performance.md): BENCH_QUICK, BENCH_SECONDS,
BENCH_WARMUP, BENCH_ROUNDS, BENCH_CONNECTIONS, BENCH_SCENARIOS, BENCH_SERVERS, BENCH_SEED,
BENCH_UPLOADS, BENCH_UPLOAD_MIB, BENCH_PIN, BENCH_SERVER_CPU, BENCH_CLIENT_CPU, BENCH_LOAD,
BENCH_OUTPUT, BENCH_KEEP, BENCH_BACKENDS, BENCH_POSTGRES_URL, BENCH_SCALE_WORKERS.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

from app.db.seed import SeedSize
from benchmarks.backends import BACKENDS, DEFAULT_POSTGRES_URL, LABELS, database, reachable, seeded
from benchmarks.load import (
    Background,
    LoadResult,
    run_python,
    run_wrk,
    send_streaming,
    wrk_available,
)
from benchmarks.report import Row, Run, markdown, write_results
from benchmarks.scale import ScaleRow, run_scale
from benchmarks.scale import markdown as scale_markdown
from benchmarks.scenarios import Scenario, all_scenarios
from benchmarks.servers import ROOT, Server, make_servers

SERVERS = ["batchery", "baseline", "floor"]
POSTGRES_SCENARIOS = ("hello", "small", "big", "deep")


@dataclass(frozen=True)
class Config:
    seconds: float
    warmup: float
    rounds: int
    connections: int
    uploads: int
    upload_mib: int
    scenarios: list[str]
    servers: list[str]
    seed: SeedSize
    server_cpu: int | None
    client_cpu: int | None
    load: str  # "wrk" or "python"
    output: Path
    keep: bool
    backends: list[str]
    postgres_url: str
    scale_workers: list[int]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        quick = env.get("BENCH_QUICK", "") not in ("", "0")
        names = [s.name for s in all_scenarios()] + ["scale"]
        scenarios = _list(env.get("BENCH_SCENARIOS"), names)
        servers = _list(env.get("BENCH_SERVERS"), SERVERS)
        bakeries, _, orders = env.get("BENCH_SEED", "50x200").partition("x")
        pin = env.get("BENCH_PIN", "1") not in ("", "0") and (os.cpu_count() or 1) >= 2
        load = env.get("BENCH_LOAD") or ("wrk" if wrk_available() else "python")
        return cls(
            seconds=float(env.get("BENCH_SECONDS", "2" if quick else "10")),
            warmup=float(env.get("BENCH_WARMUP", "1" if quick else "3")),
            rounds=int(env.get("BENCH_ROUNDS", "1" if quick else "3")),
            connections=int(env.get("BENCH_CONNECTIONS", "8")),
            uploads=int(env.get("BENCH_UPLOADS", "1" if quick else "3")),
            upload_mib=int(env.get("BENCH_UPLOAD_MIB", "100")),
            scenarios=scenarios,
            servers=servers,
            seed=SeedSize(bakeries=int(bakeries), orders_per_bakery=int(orders)),
            server_cpu=int(env.get("BENCH_SERVER_CPU", "0")) if pin else None,
            client_cpu=int(env.get("BENCH_CLIENT_CPU", "1")) if pin else None,
            load=load,
            output=Path(env.get("BENCH_OUTPUT", str(ROOT / "benchmarks" / "results"))),
            keep=env.get("BENCH_KEEP", "") not in ("", "0"),
            backends=_list(env.get("BENCH_BACKENDS"), BACKENDS),
            postgres_url=env.get("BENCH_POSTGRES_URL")
            or env.get("BATCHERY_TEST_POSTGRES_URL")
            or DEFAULT_POSTGRES_URL,
            scale_workers=[int(n) for n in env.get("BENCH_SCALE_WORKERS", "1,2").split(",")],
        )


def _list(value: str | None, allowed: list[str]) -> list[str]:
    if not value:
        return list(allowed)
    chosen = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in allowed]
    if unknown:
        raise SystemExit(f"bench: unknown {unknown}; choose from {', '.join(allowed)}")
    return chosen


def main(env: Mapping[str, str] | None = None) -> int:
    config = Config.from_env(os.environ if env is None else env)
    if config.client_cpu is not None:
        os.sched_setaffinity(0, {config.client_cpu})
    if config.load == "python":
        print("bench: wrk not found; using the Python load generator (lower, noisier numbers)")
    workdir = Path(tempfile.mkdtemp(prefix="batchery-bench-"))
    config.output.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()
    results: dict[str, dict[tuple[str, str], Row]] = {}
    scaled: list[ScaleRow] = []
    try:
        for backend in config.backends:
            if backend == "postgresql" and not reachable(config.postgres_url):
                print(f"bench: postgresql skipped, nothing answers at {config.postgres_url}")
                continue
            with database(backend, workdir, config.postgres_url) as url:
                results[backend] = run_backend(backend, url, config, workdir)
                if backend == "postgresql" and "scale" in config.scenarios:
                    scaled = run_scale(url, config, workdir)
        load_after = os.getloadavg()
        header = _header(config, started, load_before, load_after)
        sections = [
            f"### {LABELS[backend]}\n\n"
            + markdown(rows, _scenarios(config, backend), config.servers, backend)
            for backend, rows in results.items()
        ]
        if scaled:
            sections.append(
                "### Scale: Batchery workers on PostgreSQL\n\n" + scale_markdown(scaled)
            )
        text = header + "\n\n" + "\n\n".join(sections)
        print("\n" + text)
        write_results(config.output, started, header, text, results, scaled)
        return 0
    finally:
        if config.keep:
            print(f"bench: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _scenarios(config: Config, backend: str) -> list[str]:
    """PostgreSQL runs the query scenarios; the others measure the transport, not the database."""
    return [
        s
        for s in config.scenarios
        if s != "scale" and (backend == "sqlite" or s in POSTGRES_SCENARIOS)
    ]


def run_backend(
    backend: str, url: str, config: Config, workdir: Path
) -> dict[tuple[str, str], Row]:
    """Seed the database, start the servers on it, verify and measure every scenario."""
    names = _scenarios(config, backend)
    scenarios = [s for s in all_scenarios(config.upload_mib) if s.name in names]
    size = config.seed
    print(f"bench: {backend}: seeding {size.bakeries} bakeries x {size.orders_per_bakery} orders")
    asyncio.run(seeded(url, size))
    logs = workdir / backend
    logs.mkdir(parents=True, exist_ok=True)
    database_url = "" if backend == "sqlite" else url
    servers = {
        name: server
        for name, server in make_servers(
            workdir / "data", logs, config.server_cpu, database_url
        ).items()
        if name in config.servers
    }
    try:
        for server in servers.values():
            server.start()
        rows = verify(servers, scenarios)
        for round_index in range(config.rounds):
            for scenario in scenarios:
                order = _rotated(list(servers), round_index)
                for name in order:
                    row = rows[(scenario.name, name)]
                    if row.failed:
                        continue
                    run = measure(servers[name], scenario, config, workdir, warm=round_index == 0)
                    row.runs.append(run)
                    print(
                        f"bench: {backend} round {round_index + 1}/{config.rounds} "
                        f"{scenario.name:10} {name:8} {run.rps:9.1f} req/s  "
                        f"{run.cpu_ms:7.2f} CPU ms/req"
                        + (f"  {run.failures} failed" if run.failures else "")
                    )
        return rows
    finally:
        for server in servers.values():
            server.stop()


def _rotated(names: list[str], by: int) -> list[str]:
    """Alternate who goes first each round, so drift on the machine hits everyone alike."""
    by %= max(1, len(names))
    return names[by:] + names[:by]


def verify(servers: dict[str, Server], scenarios: list[Scenario]) -> dict[tuple[str, str], Row]:
    """One request of each scenario to each server: does it answer, with what, at how many SQL
    statements (counted exactly, one request alone)?"""
    rows: dict[tuple[str, str], Row] = {}
    for scenario in scenarios:
        answers: dict[str, bytes] = {}
        for name, server in servers.items():
            row = rows[(scenario.name, name)] = Row(scenario.name, name, scenario.ops_per_request)
            if scenario.only is not None and name not in scenario.only:
                row.failed = f"not run ({', '.join(scenario.only)} only)"
                continue
            server.wait_idle()
            before = server.statements()
            try:
                status, body = _send_once(server, scenario)
            except Exception as error:  # a server that chokes on a scenario is a result too
                row.failed = f"{type(error).__name__}: {error}"[:160]
                continue
            row.failed = _problem(status, body, scenario)
            server.wait_idle()
            row.sql_per_request = server.statements() - before
            if (
                row.failed is None
                and scenario.kind != "upload"
                and not scenario.name.startswith("multi")
            ):
                answers[name] = _data(body)
        if len(set(answers.values())) > 1:
            print(
                f"bench: WARNING: the servers answer {scenario.name} differently: {sorted(answers)}"
            )
    return rows


def _data(body: bytes) -> bytes:
    """The `data` of an answer (of each, for a batch): Batchery adds `extensions` (the cost)."""
    payload = orjson.loads(body)
    if isinstance(payload, list):
        return orjson.dumps([answer.get("data") for answer in payload])
    return orjson.dumps(payload.get("data"))


def _send_once(server: Server, scenario: Scenario) -> tuple[int, bytes]:
    if scenario.kind == "upload":
        status, body, _ = send_streaming("127.0.0.1", server.port, "/graphql", scenario.request)
        return status, body
    response = httpx.post(
        server.url + "/graphql",
        content=scenario.request.body,
        headers=scenario.request.headers,
        timeout=120,
    )
    return response.status_code, response.content


def _problem(status: int, body: bytes, scenario: Scenario) -> str | None:
    """Why an answer does not count as served, or None."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return f"{status}, not JSON: {body[:80]!r}"
    answers = payload if isinstance(payload, list) else [payload]
    first_error = next(
        (a["errors"][0].get("message") for a in answers if isinstance(a, dict) and a.get("errors")),
        None,
    )
    if status != 200 or first_error:
        return f"{status} {first_error or ''}".strip()[:160]
    if scenario.ops_per_request > 1 and len(answers) != scenario.ops_per_request:
        return f"{status}, {len(answers)} answers to {scenario.ops_per_request} operations"
    return None


def measure(server: Server, scenario: Scenario, config: Config, workdir: Path, warm: bool) -> Run:
    url = server.url + "/graphql"
    if warm and config.warmup > 0 and scenario.kind != "upload":
        _load(url, scenario, config.warmup, config, workdir)
    server.wait_idle()
    cpu_before = server.cpu_seconds()
    handled_before = server.handled(scenario.ops_per_request) if scenario.kind == "wrk" else 0.0
    increases: list[float] = []
    if scenario.kind == "wrk":
        result = _load(url, scenario, config.seconds, config, workdir)
    elif scenario.kind == "alongside":
        assert scenario.background is not None
        with Background(url, scenario.background) as background:
            result = _load(url, scenario, config.seconds, config, workdir)
        print(f"bench: {background.completed} background requests ran alongside")
    else:
        seconds: list[float] = []
        failures = 0
        for _ in range(config.uploads):
            server.reset_peak_memory()
            rss_before, _ = server.memory()
            status, _, elapsed = send_streaming(
                "127.0.0.1", server.port, "/graphql", scenario.request
            )
            _, peak = server.memory()
            increases.append(peak - rss_before)
            seconds.append(elapsed)
            failures += status != 200
        result = LoadResult(
            len(seconds),
            sum(seconds),
            statistics.median(seconds) * 1000,
            max(seconds) * 1000,
            failures,
        )
    drained = server.wait_idle()
    cpu = server.cpu_seconds() - cpu_before
    # The CPU above includes the requests wrk left in flight, which the server finished after
    # wrk stopped: divide by what the server finished, not by what wrk saw (alongside's count
    # would mix in the background query; uploads are sequential, so wrk's count is exact).
    handled = (
        round(server.handled(scenario.ops_per_request) - handled_before)
        if scenario.kind == "wrk"
        else None
    )
    return Run(
        result.requests,
        result.seconds,
        result.p50_ms,
        result.p99_ms,
        result.failures,
        cpu,
        max(increases) if increases else None,
        handled,
        result.seconds + drained if handled is not None and handled > result.requests else None,
    )


def _load(
    url: str, scenario: Scenario, seconds: float, config: Config, workdir: Path
) -> LoadResult:
    if config.load == "wrk":
        return run_wrk(
            url, scenario.request, seconds, config.connections, workdir, config.client_cpu
        )
    return run_python(url, scenario.request, seconds, config.connections)


def _header(
    config: Config,
    started: datetime.datetime,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    pinning = (
        f"server on CPU {config.server_cpu}, load generator on CPU {config.client_cpu}"
        if config.server_cpu is not None
        else "no CPU pinning"
    )
    return (
        f"Measured {started:%Y-%m-%d %H:%M} UTC, commit {commit or '?'}, {os.cpu_count()} CPUs, "
        f"{pinning}; {config.load}, {config.connections} connections, "
        f"{config.rounds} round(s) of {config.seconds:g}s per scenario and server (medians); "
        f"{config.seed.bakeries} bakeries x {config.seed.orders_per_bakery} orders on "
        f"{' and '.join(LABELS[b] for b in config.backends)}. "
        f"Load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
        "(anything well above 1 means other work shared the machine: compare ratios, not "
        "absolute numbers)."
    )


if __name__ == "__main__":
    sys.exit(main())
