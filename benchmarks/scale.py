"""The scale scenario: what a second worker process buys, on PostgreSQL.

`batchery serve --workers N` for each N of `BENCH_SCALE_WORKERS` (1,2), each worker process
pinned to a core of its own (all its threads, set from outside once the workers are up), under
`small` and `big` with 8 wrk connections per worker. For each: throughput, p50/p99, Batchery's
CPU per request (the whole process tree), how many cores Batchery and the local PostgreSQL server
kept busy (from /proc: the whole server, so other work on it counts too) and the whole machine's
busy share. When the
throughput stops growing, these say why: Batchery's workers at a full core each (CPU), the
database's backends busy while the workers wait (the database), or the machine out of cores.

Batchery-only, wrk's counts: with N workers each has its own `/metrics`, and Batchery cancels
what a departed client asked, so wrk's leftovers cost it nothing to speak of.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.load import LoadResult, run_python, run_wrk
from benchmarks.scenarios import Scenario, all_scenarios
from benchmarks.servers import CLOCK_TICKS, Server, free_port

SCALE_SCENARIOS = ("small", "big")


@dataclass
class ScaleRun:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failures: int
    batchery_cpu: float  # seconds, the whole process tree
    postgres_cpu: float  # seconds, the whole local PostgreSQL server
    machine_busy: float  # 0..1, all cores

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class ScaleRow:
    scenario: str
    workers: int
    connections: int
    runs: list[ScaleRun] = field(default_factory=list)

    def median(self, value: Any) -> float:
        values = [value(run) for run in self.runs]
        return statistics.median(values) if values else float("nan")


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                queue += [int(c) for c in (task / "children").read_text().split()]
    return found


def process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # gone
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def workers_of(server: Server, count: int) -> list[int]:
    """The worker processes: the server itself when alone, else uvicorn's spawned children."""
    if count == 1:
        return [server.pid]
    children = []
    for pid in descendants(server.pid)[1:]:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command:
            children.append(pid)
    return children


def pin(pid: int, cpu: int) -> None:
    """Pin every thread of `pid` (sched_setaffinity acts on one thread; new ones inherit)."""
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(task.name), {cpu})


def postgres_cpu() -> float:
    """CPU seconds of the local PostgreSQL server so far: its live processes, plus what its
    exited backends used (the postmaster reaps them: their time is in its cutime/cstime), so
    connections opened and closed during a run count too. The whole server: other databases'
    work counts as well (0 when PostgreSQL is not on this machine)."""
    total = 0.0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "comm").read_text().strip() != "postgres":
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
        parent = Path(f"/proc/{fields[1]}/comm")
        with contextlib.suppress(OSError):
            if parent.read_text().strip() != "postgres":  # the postmaster
                total += int(fields[13]) + int(fields[14])
    return total / CLOCK_TICKS


def run_scale(url: str, config: Any, workdir: Path) -> list[ScaleRow]:
    """Every worker count of `config.scale_workers` under `small` and `big`; rows in that order."""
    scenarios = [s for s in all_scenarios() if s.name in SCALE_SCENARIOS]
    cpus = sorted(os.sched_getaffinity(0) | set(range(os.cpu_count() or 1)))
    if config.server_cpu is not None:  # the server's core first, then the others
        cpus = [config.server_cpu] + [c for c in cpus if c != config.server_cpu]
    rows: list[ScaleRow] = []
    for workers in config.scale_workers:
        port = free_port()
        server = Server(
            f"batchery-{workers}w",
            [
                sys.executable,
                "-m",
                "app.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            {
                "BATCHERY_DATABASE_URL": url,
                "BATCHERY_DATA_DIR": str(workdir / "data"),
                "BATCHERY_LOG_LEVEL": "warning",
            },
            port,
            "metrics",
            workdir / f"scale-{workers}.log",
        )
        server.start()
        try:
            rows += _measure_workers(server, workers, cpus, scenarios, config, workdir)
        finally:
            server.stop()
    return rows


def _measure_workers(
    server: Server,
    workers: int,
    cpus: list[int],
    scenarios: list[Scenario],
    config: Any,
    workdir: Path,
) -> list[ScaleRow]:
    pids = _wait_for_workers(server, workers)
    if config.server_cpu is not None:
        for index, pid in enumerate(pids):
            pin(pid, cpus[index % len(cpus)])
    connections = config.connections * workers
    target = server.url + "/graphql"
    rows = []
    for scenario in scenarios:
        row = ScaleRow(scenario.name, workers, connections)
        _load(
            target, scenario, config.warmup or 1, connections, config, workdir
        )  # pools fill up here
        for round_index in range(config.rounds):
            server.wait_idle()
            tree = descendants(server.pid)
            batchery_before = sum(map(process_cpu, tree))
            postgres_before = postgres_cpu()
            busy_before, total_before = machine_ticks()
            result = _load(target, scenario, config.seconds, connections, config, workdir)
            busy_after, total_after = machine_ticks()
            server.wait_idle()
            run = ScaleRun(
                result.requests,
                result.seconds,
                result.p50_ms,
                result.p99_ms,
                result.failures,
                sum(map(process_cpu, tree)) - batchery_before,
                postgres_cpu() - postgres_before,
                (busy_after - busy_before) / max(1, total_after - total_before),
            )
            row.runs.append(run)
            print(
                f"bench: scale round {round_index + 1}/{config.rounds} {scenario.name:6} "
                f"{workers} worker(s) {run.rps:9.1f} req/s  p99 {run.p99_ms:8.1f} ms"
            )
        rows.append(row)
    return rows


def _wait_for_workers(server: Server, workers: int, timeout: float = 60.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = workers_of(server, workers)
        if len(pids) == workers:
            return pids
        time.sleep(0.2)
    raise RuntimeError(f"{server.name}: {workers} workers did not start; see {server.log}")


def _load(
    url: str, scenario: Scenario, seconds: float, connections: int, config: Any, workdir: Path
) -> LoadResult:
    if config.load == "wrk":
        return run_wrk(url, scenario.request, seconds, connections, workdir, config.client_cpu)
    return run_python(url, scenario.request, seconds, connections)


def markdown(rows: list[ScaleRow]) -> str:
    lines = [
        "| scenario | workers | connections | req/s | p50 ms | p99 ms | CPU ms/req "
        "| Batchery cores busy | PostgreSQL cores busy | machine busy | req/s vs 1 worker |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    single = {row.scenario: row.median(lambda r: r.rps) for row in rows if row.workers == 1}
    for row in rows:
        rps = row.median(lambda r: r.rps)
        cpu_ms = row.median(lambda r: 1000 * r.batchery_cpu / r.requests if r.requests else 0)
        batchery = row.median(lambda r: r.batchery_cpu / r.seconds)
        postgres = row.median(lambda r: r.postgres_cpu / r.seconds)
        machine = row.median(lambda r: r.machine_busy)
        base = single.get(row.scenario)
        gain = f"{rps / base:.2f}" if base else "-"
        lines.append(
            f"| {row.scenario} | {row.workers} | {row.connections} | {rps:,.1f} | "
            f"{row.median(lambda r: r.p50_ms):,.1f} | {row.median(lambda r: r.p99_ms):,.1f} | "
            f"{cpu_ms:.2f} | {batchery:.2f} | {postgres:.2f} | {machine:.0%} | {gain} |"
        )
    return "\n".join(lines)
