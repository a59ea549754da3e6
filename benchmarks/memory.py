"""Peak memory per concurrent request (issue 12): how much a `batchery serve` process grows while
it answers N `big` queries at once, and the same for the heaviest query the default limits allow.

For each N of BENCH_MEMORY_CONCURRENCY (1,4,8) a FRESH server (SQLite, demo data 50 x 200) gets
one small query first (the connection pool open, lazy imports done: start-up costs, not
per-request ones; not the measured query itself, whose freed memory the allocator would keep and
hand to the next request), then BENCH_MEMORY_ROUNDS bursts of N concurrent requests. The peak
is the larger of VmHWM (reset before each burst by writing 5 to /proc/<pid>/clear_refs) and
VmRSS sampled from /proc every millisecond during the burst; the growth is that peak minus the
RSS just before the burst. A fresh server per N, because CPython's
allocator keeps freed arenas: after one burst of 8, a burst of 4 would reuse them and look free.

    .venv/bin/python -m benchmarks.memory
    BENCH_MEMORY_CONCURRENCY=1,16 .venv/bin/python -m benchmarks.memory

Settings (environment): BENCH_QUICK, BENCH_MEMORY_CONCURRENCY, BENCH_MEMORY_ROUNDS,
BENCH_MEMORY_QUERIES (big,heavy), BENCH_OUTPUT. Results: memory.json in BENCH_OUTPUT.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from app.db.seed import SeedSize
from app.settings import Settings
from benchmarks.backends import seeded
from benchmarks.scenarios import BIG, HEAVY, SMALL
from tests.live.killable import KillableServer

ROOT = Path(__file__).resolve().parents[1]
SEED = SeedSize(bakeries=50, orders_per_bakery=200)
# Result nodes (list items and objects, as BATCHERY_MAX_RESULT_NODES counts them) of each query
# on the demo data: big is 50 bakeries + 2,500 orders; heavy is 4 x (50 + 10,000 orders, each
# with its bakery object).
QUERIES = {"big": (BIG, 2_550), "heavy": (HEAVY, 80_200)}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_SECONDS = 0.001


@dataclass(frozen=True)
class Burst:
    query: str
    concurrency: int
    rss_before_mib: float
    peak_growth_mib: float  # the largest of the rounds
    growth_per_request_mib: float
    nodes_per_request: int
    bytes_per_node: float
    cpu_ms_per_request: float  # median burst's CPU over its requests


def _status(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in bytes."""
    text = Path(f"/proc/{pid}/status").read_text()
    rss = re.search(r"VmRSS:\s+(\d+) kB", text)
    hwm = re.search(r"VmHWM:\s+(\d+) kB", text)
    assert rss is not None and hwm is not None
    return int(rss.group(1)) * 1024, int(hwm.group(1)) * 1024


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Sampler:
    """VmRSS of a process, read from /proc every millisecond on a thread until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _status(self.pid)[0])
            self.samples += 1
            self._stop.wait(SAMPLE_SECONDS)


async def _burst(url: str, query: str, concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        responses = await asyncio.gather(
            *(client.post(url, json={"query": query}) for _ in range(concurrency))
        )
    for response in responses:
        if response.status_code != 200 or "errors" in response.json():
            raise RuntimeError(f"unexpected answer: {response.status_code} {response.text[:300]}")


def measure(database: Path, workdir: Path, name: str, concurrency: int, rounds: int) -> Burst:
    query, nodes = QUERIES[name]
    server = KillableServer(
        {
            "BATCHERY_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            "BATCHERY_DATA_DIR": str(workdir),
            "BATCHERY_LOG_LEVEL": "info",  # the start-up line KillableServer waits for
        }
    ).start()
    try:
        url = f"{server.url}/graphql"
        asyncio.run(_burst(url, SMALL, 1))  # start-up costs, paid once per process
        growths: list[int] = []
        befores: list[int] = []
        cpus: list[float] = []
        for _ in range(rounds):
            Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
            before, _ = _status(server.pid)
            cpu = _cpu_seconds(server.pid)
            with Sampler(server.pid) as sampler:
                asyncio.run(_burst(url, query, concurrency))
            _, hwm = _status(server.pid)
            cpus.append((_cpu_seconds(server.pid) - cpu) / concurrency)
            growths.append(max(hwm, sampler.peak) - before)
            befores.append(before)
    finally:
        server.stop()
    growth = max(growths)
    return Burst(
        name,
        concurrency,
        round(befores[0] / 2**20, 1),
        round(growth / 2**20, 2),
        round(growth / concurrency / 2**20, 2),
        nodes,
        round(growth / concurrency / nodes, 1),
        round(sorted(cpus)[len(cpus) // 2] * 1000, 1),
    )


def bound(bursts: list[Burst], cap: int) -> tuple[float, float, float] | None:
    """Growth per request as a line through big and heavy at the same concurrency: (fixed bytes,
    bytes per result node, the bytes at `cap` nodes) of the steepest such line (requests that
    run alone peak together; concurrent ones interleave and peak less per request), or None
    without both queries."""
    by = {(b.query, b.concurrency): b for b in bursts}
    lines = []
    for n in sorted(n for (q, n) in by if q == "big" and ("heavy", n) in by):
        small, large = by[("big", n)], by[("heavy", n)]
        slope = max(
            0.0,
            (large.growth_per_request_mib - small.growth_per_request_mib)
            * 2**20
            / (large.nodes_per_request - small.nodes_per_request),
        )
        fixed = max(0.0, small.growth_per_request_mib * 2**20 - slope * small.nodes_per_request)
        lines.append((fixed, slope, fixed + slope * cap))
    return max(lines, key=lambda line: line[2], default=None)


def report(bursts: list[Burst]) -> str:
    cap = Settings().max_result_nodes
    line = bound(bursts, cap)
    lines = [
        "Peak RSS growth of one `batchery serve` process per concurrent request (SQLite, "
        f"{SEED.bakeries} x {SEED.orders_per_bakery}; a fresh server per row; worst of the rounds)",
        "",
        "| query | concurrent | RSS before | peak growth | per request | result nodes | "
        "bytes per node | CPU ms/req |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {b.query} | {b.concurrency} | {b.rss_before_mib:.0f} MiB | "
        f"{b.peak_growth_mib:.1f} MiB | {b.growth_per_request_mib:.2f} MiB | "
        f"{b.nodes_per_request:,} | {b.bytes_per_node:,.0f} | {b.cpu_ms_per_request:.1f} |"
        for b in bursts
    ]
    if line is not None:
        fixed, slope, at_cap = line
        lines += [
            "",
            f"Per concurrent request, at worst: {fixed / 2**20:.2f} MiB + {slope:,.0f} bytes per "
            f"result node; at BATCHERY_MAX_RESULT_NODES ({cap:,}) that is "
            f"{at_cap / 2**20:,.0f} MiB.",
        ]
    return "\n".join(lines)


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    quick = env.get("BENCH_QUICK", "") not in ("", "0")
    levels = [int(n) for n in env.get("BENCH_MEMORY_CONCURRENCY", "1,4,8").split(",")]
    rounds = int(env.get("BENCH_MEMORY_ROUNDS", "1" if quick else "3"))
    names = [q.strip() for q in env.get("BENCH_MEMORY_QUERIES", "big,heavy").split(",")]
    unknown = [n for n in names if n not in QUERIES]
    if unknown:
        raise SystemExit(f"bench: unknown BENCH_MEMORY_QUERIES {unknown}; choose from big,heavy")
    output = Path(env.get("BENCH_OUTPUT", str(ROOT / "benchmarks" / "results")))
    bursts: list[Burst] = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as workdir:
        database = Path(workdir) / "bench.db"
        asyncio.run(seeded(f"sqlite+aiosqlite:///{database}", SEED))
        for name in names:
            for concurrency in levels:
                started = time.perf_counter()
                burst = measure(database, Path(workdir), name, concurrency, rounds)
                bursts.append(burst)
                print(
                    f"bench: memory {name} x{concurrency}: +{burst.peak_growth_mib:.1f} MiB "
                    f"({time.perf_counter() - started:.1f} s)"
                )
    print(report(bursts))
    output.mkdir(parents=True, exist_ok=True)
    (output / "memory.json").write_text(json.dumps([asdict(b) for b in bursts], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
