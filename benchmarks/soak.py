"""`make soak`: a real server under a mixed workload at saturation for a set time.

Queries, JSON batches, multipart uploads (some large enough to be spooled to disk), `addMoney` and
atomic REST bulk creates run from many concurrent clients against one `batchery serve` process for
SOAK_SECONDS (default 600). Its resident memory and open file descriptors are sampled from /proc.

It fails on:
- any 5xx, or a request the server did not answer (connection refused or reset);
- a leak: memory or descriptors still growing in the last third of the run (the slope of a
  least-squares line through the last third's samples, times its length, above a tolerance:
  RSS_TOLERANCE_BYTES or RSS_TOLERANCE_FRACTION of the RSS, whichever is larger; FD_TOLERANCE
  descriptors). The first two thirds are warm-up: caches fill, the allocator finds its size;
- a temporary file left behind: anything in the upload spool directory, or a half-written photo
  (`.incoming-*`) in the photo store, once the server has stopped.

Environment: SOAK_SECONDS, SOAK_CLIENTS (concurrent clients, default 24), SOAK_OUTPUT (a
directory for the server's log; default: a temporary one). Exit status 0 when it passed.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from benchmarks.servers import PAGE, ROOT, Server, free_port

DEFAULT_SECONDS = 600
DEFAULT_CLIENTS = 24
MIB = 1024 * 1024
RSS_TOLERANCE_BYTES = 16 * MIB
RSS_TOLERANCE_FRACTION = 0.05
FD_TOLERANCE = 8
SEED_BAKERIES, SEED_ORDERS_PER_BAKERY = 50, 20
# A large upload is bigger than BATCHERY_UPLOAD_SPOOL_BYTES (1 MiB): it goes through a temp file.
LARGE_UPLOAD_SIDE = 620  # pixels: 620 * 620 * 3 bytes, stored uncompressed ≈ 1.15 MB
REQUEST_TIMEOUT_SECONDS = 120.0

# How often each kind comes up in the mix (one client picks the next kind in this cycle).
MIX = (
    ["query"] * 4
    + ["batch"] * 2
    + ["upload"] * 2
    + ["large_upload"]
    + ["add_money"] * 3
    + ["bulk_create"] * 2
)

QUERY = "{ bakeries(first: 10) { id name orderCount orders(limitTo: 3) { id currentTotal } } }"
ADD_MONEY = "mutation($id: ID!) { addMoney(orderId: $id, dollarsToAdd: 1) { id currentTotal } }"
UPLOAD = (
    "mutation($id: ID!, $file: Upload!) "
    "{ uploadOrderPhoto(orderId: $id, file: $file) { id size contentType } }"
)


def png(side: int, shade: int) -> bytes:
    """A real PNG (uploads are checked for being images), stored uncompressed so it has the
    size asked for; `shade` makes a few distinct files (the photo store keeps one per content)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" + bytes([shade, 128, 255 - shade]) * side
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    pixels = zlib.compress(row * side, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@dataclass
class Tally:
    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)
    latencies: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: list[str] = field(default_factory=list)

    def record(self, kind: str, status: str, seconds: float, problem: str | None) -> None:
        self.statuses[(kind, status)] += 1
        self.latencies[kind].append(seconds)
        if problem is not None and len(self.failures) < 20:
            self.failures.append(f"{kind}: {problem}")


@dataclass
class Sample:
    at: float
    rss: int
    fds: int


class Workload:
    def __init__(self, client: httpx.AsyncClient, orders: int) -> None:
        self.client = client
        self.orders = orders
        self.random = random.Random(7)
        self.small_files = [png(8, shade) for shade in range(4)]
        self.large_files = [png(LARGE_UPLOAD_SIDE, shade) for shade in range(2)]

    def order_id(self) -> str:
        return str(self.random.randint(1, self.orders))

    async def send(self, kind: str) -> httpx.Response:
        post = self.client.post
        if kind == "query":
            return await post("/graphql", json={"query": QUERY})
        if kind == "batch":
            batch = [{"query": ADD_MONEY, "variables": {"id": self.order_id()}}]
            batch += [{"query": QUERY} for _ in range(4)]
            return await post("/graphql", json=batch)
        if kind in ("upload", "large_upload"):
            files = self.large_files if kind == "large_upload" else self.small_files
            operations = {"query": UPLOAD, "variables": {"id": self.order_id(), "file": None}}
            return await post(
                "/graphql",
                headers={"GraphQL-Preflight": "1"},
                data={
                    "operations": orjson.dumps(operations).decode(),
                    "map": '{"0": ["variables.file"]}',
                },
                files={"0": ("cake.png", self.random.choice(files), "image/png")},
            )
        if kind == "add_money":
            return await post(
                "/graphql", json={"query": ADD_MONEY, "variables": {"id": self.order_id()}}
            )
        if kind == "bulk_create":
            records = [
                {"data": {"name": f"Soak {uuid.uuid4().hex[:12]}", "region": "CENTRAL"}}
                for _ in range(self.random.randint(5, 20))
            ]
            body = {"operation": "CREATE", "records": records, "options": {"atomic": True}}
            return await post("/api/bakeries/bulk", json=body)
        raise ValueError(kind)


def problem_of(kind: str, response: httpx.Response) -> str | None:
    """What is wrong with an answer: a 5xx, or a GraphQL error that stands for one."""
    if response.status_code >= 500:
        return f"{response.status_code} {response.text[:300]}"
    if kind == "bulk_create":
        return (
            None if response.status_code == 200 else f"{response.status_code} {response.text[:300]}"
        )
    payload = response.json()
    for result in payload if isinstance(payload, list) else [payload]:
        for error in result.get("errors") or []:
            code = error.get("extensions", {}).get("code")
            return f"{response.status_code} {code}: {error['message'][:200]}"
    return None


async def client_loop(workload: Workload, tally: Tally, deadline: float, start: int) -> None:
    for kind in itertools.islice(itertools.cycle(MIX), start, None):
        if time.monotonic() >= deadline:
            return
        began = time.perf_counter()
        try:
            response = await workload.send(kind)
        except httpx.HTTPError as error:
            tally.record(kind, type(error).__name__, time.perf_counter() - began, repr(error))
            continue
        problem = problem_of(kind, response)
        tally.record(kind, str(response.status_code), time.perf_counter() - began, problem)


def read_proc(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/statm") as statm:
        rss_pages = int(statm.read().split()[1])
    return rss_pages * PAGE, len(os.listdir(f"/proc/{pid}/fd"))


async def sampler(pid: int, samples: list[Sample], deadline: float, every: float) -> None:
    started = time.monotonic()
    while time.monotonic() < deadline:
        rss, fds = read_proc(pid)
        samples.append(Sample(time.monotonic() - started, rss, fds))
        await asyncio.sleep(every)


def growth(points: list[tuple[float, float]]) -> float:
    """Least-squares slope through `points`, times their time span: how much the line grew."""
    if len(points) < 3:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    slope = statistics.linear_regression(xs, ys).slope
    return slope * (xs[-1] - xs[0])


@dataclass
class Verdict:
    problems: list[str]
    lines: list[str]

    @property
    def passed(self) -> bool:
        return not self.problems


def judge(tally: Tally, samples: list[Sample], leftovers: list[Path], seconds: float) -> Verdict:
    problems: list[str] = []
    lines = [f"soak: {seconds:.0f} s, {sum(tally.statuses.values())} requests", ""]
    lines.append(f"{'kind':<14}{'requests':>10}{'req/s':>9}{'p50 ms':>10}{'p99 ms':>10}  statuses")
    for kind in dict.fromkeys(MIX):
        latencies = sorted(tally.latencies.get(kind, []))
        if not latencies:
            continue
        statuses = {s: n for (k, s), n in sorted(tally.statuses.items()) if k == kind}
        p50 = latencies[len(latencies) // 2] * 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        shown = " ".join(f"{s}:{n}" for s, n in statuses.items())
        rate = len(latencies) / seconds
        lines.append(f"{kind:<14}{len(latencies):>10}{rate:>9.1f}{p50:>10.1f}{p99:>10.1f}  {shown}")
    if tally.failures:
        problems.append(
            f"{len(tally.failures)}+ failed requests, e.g. " + "; ".join(tally.failures[:5])
        )
    if samples:
        last_third = [s for s in samples if s.at >= samples[-1].at * 2 / 3]
        mib = MIB
        rss_growth = growth([(s.at, s.rss) for s in last_third])
        fd_growth = growth([(s.at, s.fds) for s in last_third])
        rss_limit = max(RSS_TOLERANCE_BYTES, RSS_TOLERANCE_FRACTION * last_third[-1].rss)
        lines += [
            "",
            f"RSS MiB: start {samples[0].rss / mib:.1f}, "
            f"peak {max(s.rss for s in samples) / mib:.1f}, "
            f"end {samples[-1].rss / mib:.1f}; last-third trend {rss_growth / mib:+.1f} "
            f"(limit {rss_limit / mib:.1f})",
            f"open fds: start {samples[0].fds}, peak {max(s.fds for s in samples)}, "
            f"end {samples[-1].fds}; last-third trend {fd_growth:+.1f} (limit {FD_TOLERANCE})",
            f"samples: {len(samples)}",
        ]
        if rss_growth > rss_limit:
            problems.append(f"memory still growing in the last third: {rss_growth / mib:+.1f} MiB")
        if fd_growth > FD_TOLERANCE:
            problems.append(f"file descriptors still growing in the last third: {fd_growth:+.1f}")
    else:
        problems.append("no memory samples were taken")
    lines.append(f"temporary files left: {len(leftovers)}")
    if leftovers:
        problems.append(f"temporary files left behind: {', '.join(map(str, leftovers[:5]))}")
    lines.append("")
    lines.append("PASSED" if not problems else "FAILED: " + " | ".join(problems))
    return Verdict(problems, lines)


def leftover_files(data_dir: Path) -> list[Path]:
    spool = data_dir / "uploads"
    left = [p for p in spool.rglob("*")] if spool.exists() else []
    photos = data_dir / "photos"
    left += list(photos.rglob(".incoming-*")) if photos.exists() else []
    return left


async def drive(url: str, pid: int, seconds: float, clients: int) -> tuple[Tally, list[Sample]]:
    tally, samples = Tally(), []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=url, limits=limits, timeout=REQUEST_TIMEOUT_SECONDS
    ) as client:
        workload = Workload(client, SEED_BAKERIES * SEED_ORDERS_PER_BAKERY)
        every = min(1.0, max(0.2, seconds / 300))
        await asyncio.gather(
            sampler(pid, samples, deadline, every),
            *(client_loop(workload, tally, deadline, index) for index in range(clients)),
        )
    return tally, samples


def soak(seconds: float, clients: int, output: Path) -> Verdict:
    data_dir = output / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    batchery = str(Path(sys.executable).parent / "batchery")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BATCHERY_")},
        "BATCHERY_DATA_DIR": str(data_dir),
        "BATCHERY_LOG_LEVEL": "warning",
    }
    seed = [batchery, "seed", "--bakeries", str(SEED_BAKERIES)]
    seed += ["--orders-per-bakery", str(SEED_ORDERS_PER_BAKERY), "--reset"]

    subprocess.run(seed, cwd=ROOT, env=env, check=True, capture_output=True)
    port = free_port()
    server = Server(
        "batchery",
        [batchery, "serve", "--port", str(port)],
        env,
        port,
        "metrics",
        output / "server.log",
    )
    server.start()
    assert server.process is not None
    try:
        tally, samples = asyncio.run(drive(server.url, server.process.pid, seconds, clients))
    finally:
        server.stop()
    return judge(tally, samples, leftover_files(data_dir), seconds)


def main() -> int:
    seconds = float(os.environ.get("SOAK_SECONDS", DEFAULT_SECONDS))
    clients = int(os.environ.get("SOAK_CLIENTS", DEFAULT_CLIENTS))
    chosen = os.environ.get("SOAK_OUTPUT")
    with tempfile.TemporaryDirectory(prefix="batchery-soak-") as scratch:
        output = Path(chosen) if chosen else Path(scratch)
        print(f"soak: {seconds:.0f} s, {clients} clients; server log in {output}/server.log")
        verdict = soak(seconds, clients, output)
        print("\n".join(verdict.lines))
        return 0 if verdict.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
