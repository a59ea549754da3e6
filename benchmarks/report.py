"""Turning runs into the table: medians, ratios to the baseline and the floor, and the targets."""

from __future__ import annotations

import datetime
import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ALL = ("sqlite", "postgresql")
SQLITE = ("sqlite",)


@dataclass
class Run:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failures: int
    cpu_seconds: float
    rss_increase: float | None = None  # bytes, for the upload scenario
    # Requests the server finished from the start of the run until it was idle again, those
    # still in flight when wrk stopped included (None: not counted, use wrk's `requests`).
    handled: int | None = None
    # From the start of the run until the server finished the last of them (None: no leftovers).
    busy_seconds: float | None = None

    @property
    def rps(self) -> float:
        """Requests per second. A server that was still working when wrk stopped is credited
        with what it finished, over the time it took: in a short run of slow requests (8
        connections, each request seconds long, all finishing together) wrk's own count would
        be 0 or 8 and say nothing about throughput."""
        if self.handled is not None and self.busy_seconds:
            return self.handled / self.busy_seconds
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        done = self.handled if self.handled else self.requests
        return 1000 * self.cpu_seconds / done if done else float("nan")


@dataclass
class Row:
    scenario: str
    server: str
    ops_per_request: int
    failed: str | None = None
    sql_per_request: float | None = None
    runs: list[Run] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        values = [getattr(run, attribute) for run in self.runs]
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else float("nan")

    @property
    def ok(self) -> bool:
        return self.failed is None and bool(self.runs)


def ratio(ours: Row | None, theirs: Row | None, attribute: str, scale: float = 1.0) -> float | None:
    """`ours / theirs` for `attribute`: the median of the ratios of runs of the same round (they
    ran minutes apart at most, so drift on the machine cancels out), or of the medians when the
    rounds do not pair up."""
    if ours is None or theirs is None or not ours.ok or not theirs.ok:
        return None
    if len(ours.runs) == len(theirs.runs):
        pairs = [
            scale * getattr(a, attribute) / getattr(b, attribute)
            for a, b in zip(ours.runs, theirs.runs, strict=True)
            if getattr(b, attribute)
        ]
        if pairs:
            return statistics.median(pairs)
    denominator = theirs.median(attribute)
    if not denominator or denominator != denominator:  # zero (nothing finished in time) or NaN
        return None
    return scale * ours.median(attribute) / denominator


# Issue 12's goals: (name, what is measured, threshold, "min" means value >= threshold, the
# backends it applies to).
TARGETS = [
    ("big throughput", "big: Batchery req/s / baseline req/s", 2.5, "min", ALL),
    ("big CPU", "big: Batchery CPU ms/req / floor CPU ms/req", 1.05, "max", ("sqlite",)),
    ("big CPU", "big: Batchery CPU ms/req / floor CPU ms/req", 1.1, "max", ("postgresql",)),
    ("small throughput", "small: Batchery req/s / baseline req/s", 3.0, "min", ALL),
    ("hello throughput", "hello: Batchery req/s / baseline req/s", 8.0, "min", ALL),
    ("deep CPU", "deep: Batchery CPU ms/req / floor CPU ms/req", 1.3, "max", ALL),
    ("batch of 20", "Batchery ops/s: batch20 / small (20 separate requests)", 4.0, "min", SQLITE),
    ("100 MiB upload", "upload100: Batchery req/s / baseline req/s", 1.0, "min", SQLITE),
    (
        "100 MiB upload RSS",
        "upload100: Batchery peak RSS increase, MiB",
        20.0,
        "max-exclusive",
        SQLITE,
    ),
]


def target_values(
    rows: dict[tuple[str, str], Row], backend: str = "sqlite"
) -> dict[str, float | None]:
    def of(scenario: str, server: str) -> Row | None:
        return rows.get((scenario, server))

    def batchery_over(server: str, scenario: str, attribute: str) -> float | None:
        return ratio(of(scenario, "batchery"), of(scenario, server), attribute)

    batch = of("batch20", "batchery")
    upload = of("upload100", "batchery")
    values = {
        "big throughput": batchery_over("baseline", "big", "rps"),
        "big CPU": batchery_over("floor", "big", "cpu_ms"),
        "small throughput": batchery_over("baseline", "small", "rps"),
        "hello throughput": batchery_over("baseline", "hello", "rps"),
        "deep CPU": batchery_over("floor", "deep", "cpu_ms"),
        "batch of 20": ratio(
            batch, of("small", "batchery"), "rps", batch.ops_per_request if batch else 1
        ),
        "100 MiB upload": batchery_over("baseline", "upload100", "rps"),
        "100 MiB upload RSS": (
            upload.median("rss_increase") / 2**20 if upload and upload.ok else None
        ),
    }
    applicable = {name for name, *_, backends in TARGETS if backend in backends}
    return {name: value for name, value in values.items() if name in applicable}


def _met(value: float, threshold: float, how: str) -> bool:
    if how == "min":
        return value >= threshold
    if how == "max":
        return value <= threshold
    return value < threshold


def _num(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:,.{digits}f}"


def markdown(
    rows: dict[tuple[str, str], Row],
    scenarios: list[str],
    servers: list[str],
    backend: str = "sqlite",
) -> str:
    lines = [
        "| scenario | server | req/s | ops/s | p50 ms | p99 ms | CPU ms/req | SQL/req "
        "| req/s vs baseline | req/s vs floor | CPU vs floor |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario in scenarios:
        for server in servers:
            row = rows.get((scenario, server))
            if row is None:
                continue
            if not row.ok:
                reason = row.failed or "no runs"
                lines.append(f"| {scenario} | {server} | failed: {reason} |" + " |" * 9)
                continue
            rps = row.median("rps")
            base = rows.get((scenario, "baseline"))
            floor = rows.get((scenario, "floor"))
            vs_base = ratio(row, base, "rps")
            vs_floor = ratio(row, floor, "rps")
            cpu_floor = ratio(row, floor, "cpu_ms")
            extra = ""
            if row.median("rss_increase") == row.median("rss_increase"):
                extra = f" (peak RSS +{row.median('rss_increase') / 2**20:.1f} MiB)"
            lines.append(
                f"| {scenario} | {server}{extra} | {_num(rps)} | "
                f"{_num(rps * row.ops_per_request)} | {_num(row.median('p50_ms'))} | "
                f"{_num(row.median('p99_ms'))} | {_num(row.median('cpu_ms'), 2)} | "
                f"{_num(row.sql_per_request, 0)} | {_num(vs_base, 2)} | {_num(vs_floor, 2)} | "
                f"{_num(cpu_floor, 2)} |"
            )
    lines += [
        "",
        "| target | measured as | goal | value | met |",
        "| --- | --- | --- | ---: | --- |",
    ]
    values = target_values(rows, backend)
    for name, what, threshold, how, backends in TARGETS:
        if backend not in backends:
            continue
        value = values[name]
        goal = {"min": ">=", "max": "<=", "max-exclusive": "<"}[how] + f" {threshold}"
        verdict = "n/a" if value is None else ("yes" if _met(value, threshold, how) else "NO")
        lines.append(f"| {name} | {what} | {goal} | {_num(value, 2)} | {verdict} |")
    return "\n".join(lines)


def write_results(
    output: Path,
    started: datetime.datetime,
    header: str,
    text: str,
    results: dict[str, dict[tuple[str, str], Row]],
    scaled: list[Any],  # benchmarks.scale.ScaleRow
) -> None:
    stamp = f"{started:%Y%m%d-%H%M%S}"
    (output / f"bench-{stamp}.md").write_text(text + "\n")
    (output / "latest.md").write_text(text + "\n")
    data = {
        "header": header,
        "rows": [
            {"backend": backend, **asdict(row)}
            for backend, rows in results.items()
            for row in rows.values()
        ],
        "targets": {backend: target_values(rows, backend) for backend, rows in results.items()},
        "scale": [asdict(row) for row in scaled],
    }
    (output / "latest.json").write_text(json.dumps(data, indent=2, default=str))
    print(f"\nbench: results written to {output / 'latest.md'} and {output / 'latest.json'}")
