"""Turning runs into the table: medians, ratios to the baseline and the floor, and the targets."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class Run:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failures: int
    cpu_seconds: float
    rss_increase: float | None = None  # bytes, for the upload scenario

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_seconds / self.requests if self.requests else float("nan")


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


TARGETS = [
    # (name, what is measured, threshold, "min" means value >= threshold)
    ("big throughput", "big: Batchery req/s / baseline req/s", 2.0, "min"),
    ("big CPU", "big: Batchery CPU ms/req / floor CPU ms/req", 1.3, "max"),
    ("hello throughput", "hello: Batchery req/s / baseline req/s", 3.0, "min"),
    ("small throughput", "small: Batchery req/s / baseline req/s", 1.8, "min"),
    ("batch of 20", "Batchery ops/s: batch20 / small (20 separate requests)", 4.0, "min"),
    ("100 MiB upload", "upload100: Batchery peak RSS increase, MiB", 20.0, "max-exclusive"),
]


def target_values(rows: dict[tuple[str, str], Row]) -> dict[str, float | None]:
    def ratio(
        scenario: str, attribute: str, other: str, *, other_scenario: str = ""
    ) -> float | None:
        ours = rows.get((scenario, "batchery"))
        theirs = rows.get((other_scenario or scenario, other))
        if ours is None or theirs is None or not ours.ok or not theirs.ok:
            return None
        return ours.median(attribute) / theirs.median(attribute)

    batch = rows.get(("batch20", "batchery"))
    separate = rows.get(("small", "batchery"))
    batch_ratio = None
    if batch and separate and batch.ok and separate.ok:
        batch_ratio = batch.median("rps") * batch.ops_per_request / separate.median("rps")
    upload = rows.get(("upload100", "batchery"))
    rss = upload.median("rss_increase") / 2**20 if upload and upload.ok else None
    return {
        "big throughput": ratio("big", "rps", "baseline"),
        "big CPU": ratio("big", "cpu_ms", "floor"),
        "hello throughput": ratio("hello", "rps", "baseline"),
        "small throughput": ratio("small", "rps", "baseline"),
        "batch of 20": batch_ratio,
        "100 MiB upload": rss,
    }


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


def markdown(rows: dict[tuple[str, str], Row], scenarios: list[str], servers: list[str]) -> str:
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
            vs_base = rps / base.median("rps") if base and base.ok else None
            vs_floor = rps / floor.median("rps") if floor and floor.ok else None
            cpu_floor = (
                row.median("cpu_ms") / floor.median("cpu_ms") if floor and floor.ok else None
            )
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
    values = target_values(rows)
    for name, what, threshold, how in TARGETS:
        value = values[name]
        goal = {"min": ">=", "max": "<=", "max-exclusive": "<"}[how] + f" {threshold}"
        verdict = "n/a" if value is None else ("yes" if _met(value, threshold, how) else "NO")
        lines.append(f"| {name} | {what} | {goal} | {_num(value, 2)} | {verdict} |")
    return "\n".join(lines)
