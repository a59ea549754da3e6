"""Variable batching and streamed batches (issue 11), against a real `batchery serve`:

1. The same 100 operations (`bakery(id: $id) { id name orders(limitTo: 5) { id currentTotal } }`
   on 100 different bakeries) sent as ONE request with 100 variable sets, as one JSON-array batch
   of 100, and as 100 separate requests (one keep-alive connection, one after the other):
   operations per second, and SQL statements per 100 operations (from the server's
   `batchery_db_statements_total`).
2. Time to first result of a batch whose slowest operation takes about ten times the others
   (calibrated on this machine: the heavy operation's page size grows until it does), streamed
   as `application/jsonl` against the same batch answered as one JSON array.

    .venv/bin/python -m benchmarks.variable_batching          # 3 rounds of 3 s per form
    BENCH_QUICK=1 .venv/bin/python -m benchmarks.variable_batching    # a smoke run

Settings (environment): BENCH_QUICK, BENCH_VB_SECONDS (per form and round), BENCH_VB_ROUNDS,
BENCH_VB_REPEATS (streamed batches timed), BENCH_OUTPUT.
Wall-clock figures on whatever else the machine does: compare the forms, not runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import orjson

from app.db.seed import SeedSize
from benchmarks.backends import seeded
from tests.live.killable import KillableServer

ROOT = Path(__file__).resolve().parents[1]
OPERATIONS = 100
SEED = SeedSize(bakeries=OPERATIONS, orders_per_bakery=200, suppliers=8, seed=5)
QUERY = "query($id: ID!) { bakery(id: $id) { id name orders(limitTo: 5) { id currentTotal } } }"
LIGHT = "query($id: ID!) { bakery(id: $id) { id name } }"
HEAVY = (
    "{{ bakeries(first: 100) {{ id orders(limitTo: {size}) "
    "{{ id writtenPhrase currentTotal }} }} }}"
)
HEAVY_SIZES = (5, 10, 20, 50, 100, 200)
LIGHT_OPERATIONS = 9
STATEMENTS = re.compile(rb"^batchery_db_statements_total (\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class FormResult:
    form: str
    http_requests_per_round: int
    rounds: int
    seconds: float
    operations_per_second: float
    statements_per_100_operations: float


@dataclass(frozen=True)
class StreamResult:
    heavy_page_size: int
    heavy_to_light_ratio: float
    streamed_first_ms: float
    streamed_last_ms: float
    array_ms: float


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    quick = env.get("BENCH_QUICK", "") not in ("", "0")
    seconds = float(env.get("BENCH_VB_SECONDS", "0.5" if quick else "3"))
    repeats = int(env.get("BENCH_VB_REPEATS", "3" if quick else "20"))
    rounds = int(env.get("BENCH_VB_ROUNDS", "1" if quick else "3"))
    output = Path(env.get("BENCH_OUTPUT", str(ROOT / "benchmarks" / "results")))
    with tempfile.TemporaryDirectory(prefix="bench-vb-") as workdir:
        database = Path(workdir) / "bench.db"
        asyncio.run(seeded(f"sqlite+aiosqlite:///{database}", SEED))
        server = KillableServer(
            {
                "BATCHERY_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
                "BATCHERY_DATA_DIR": workdir,
                "BATCHERY_LOG_LEVEL": "info",  # the start-up line KillableServer waits for
            }
        ).start()
        try:
            url = f"{server.url}/graphql"
            with httpx.Client(timeout=60) as client:
                forms = measure_rounds(client, server.url, seconds, rounds)
                streamed = time_to_first(client, url, repeats)
        finally:
            server.stop()
    print(report(forms, streamed))
    output.mkdir(parents=True, exist_ok=True)
    (output / "variable_batching.json").write_text(
        json.dumps({"forms": [asdict(f) for f in forms], "stream": asdict(streamed)}, indent=2)
    )
    return 0


def _variables() -> list[dict[str, str]]:
    return [{"id": str(i)} for i in range(1, OPERATIONS + 1)]


def _one_request_of_sets(client: httpx.Client, url: str) -> None:
    _check(client.post(url, json={"query": QUERY, "variables": _variables()}), OPERATIONS)


def _json_array(client: httpx.Client, url: str) -> None:
    batch = [{"query": QUERY, "variables": v} for v in _variables()]
    _check(client.post(url, json=batch), OPERATIONS)


def _separate(client: httpx.Client, url: str) -> None:
    for variables in _variables():
        _check(client.post(url, json={"query": QUERY, "variables": variables}), 1)


FORMS: dict[str, tuple[int, Callable[[httpx.Client, str], None]]] = {
    "100 variable sets, 1 request": (1, _one_request_of_sets),
    "JSON-array batch of 100, 1 request": (1, _json_array),
    "100 separate requests": (OPERATIONS, _separate),
}


def _check(response: httpx.Response, expected: int) -> None:
    response.raise_for_status()
    body = response.json()
    answers = body if isinstance(body, list) else [body]
    if len(answers) != expected or any("errors" in answer for answer in answers):
        raise RuntimeError(f"unexpected answer: {response.text[:300]}")


def _statements(client: httpx.Client, base: str) -> float:
    found = STATEMENTS.search(client.get(f"{base}/metrics").content)
    return float(found.group(1)) if found else 0.0


def measure(client: httpx.Client, base: str, form: str, seconds: float) -> FormResult:
    requests, send = FORMS[form]
    url = f"{base}/graphql"
    send(client, url)  # warm: documents parsed and planned, connections open
    before = _statements(client, base)
    rounds, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or rounds == 0:
        send(client, url)
        rounds += 1
    statements = _statements(client, base) - before
    return FormResult(
        form,
        requests,
        rounds,
        round(elapsed, 3),
        round(rounds * OPERATIONS / elapsed, 1),
        round(statements / rounds, 2),
    )


def measure_rounds(
    client: httpx.Client, base: str, seconds: float, rounds: int
) -> list[FormResult]:
    """Each form `rounds` times, the forms taking turns (drift on a shared machine hits all
    alike); the round with the median rate of each form is kept."""
    runs: dict[str, list[FormResult]] = {form: [] for form in FORMS}
    names = list(FORMS)
    for turn in range(rounds):
        for form in names[turn % len(names) :] + names[: turn % len(names)]:
            runs[form].append(measure(client, base, form, seconds))
    return [
        sorted(results, key=lambda r: r.operations_per_second)[len(results) // 2]
        for results in runs.values()
    ]


def _solo_ms(client: httpx.Client, url: str, body: dict, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        client.post(url, json=body).raise_for_status()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def time_to_first(client: httpx.Client, url: str, repeats: int) -> StreamResult:
    light = _solo_ms(client, url, {"query": LIGHT, "variables": {"id": "1"}}, repeats)
    size, ratio = HEAVY_SIZES[-1], 0.0
    for size in HEAVY_SIZES:  # the smallest heavy operation ten times the light one
        ratio = _solo_ms(client, url, {"query": HEAVY.format(size=size)}, repeats) / light
        if ratio >= 10:
            break
    batch = [{"query": HEAVY.format(size=size)}] + [
        {"query": LIGHT, "variables": {"id": str(i)}} for i in range(1, LIGHT_OPERATIONS + 1)
    ]
    firsts, lasts, arrays = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        with client.stream(
            "POST", url, json=batch, headers={"Accept": "application/jsonl"}
        ) as response:
            first = None
            for line in response.iter_lines():
                if line and first is None:
                    first = time.perf_counter() - start
                    orjson.loads(line)
        assert first is not None
        firsts.append(first * 1000)
        lasts.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        _check(client.post(url, json=batch), len(batch))
        arrays.append((time.perf_counter() - start) * 1000)
    return StreamResult(
        size,
        round(ratio, 1),
        round(statistics.median(firsts), 2),
        round(statistics.median(lasts), 2),
        round(statistics.median(arrays), 2),
    )


def report(forms: list[FormResult], streamed: StreamResult) -> str:
    lines = [
        f"Variable batching: {OPERATIONS} operations of "
        "`bakery(id: $id) { id name orders(limitTo: 5) { id currentTotal } }`",
        "",
        "| form | HTTP requests | ops/s | SQL statements per 100 ops |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {f.form} | {f.http_requests_per_round} | {f.operations_per_second:,.0f} | "
        f"{f.statements_per_100_operations:g} |"
        for f in forms
    ]
    lines += [
        "",
        f"Streamed batch: 1 heavy operation (page {streamed.heavy_page_size}, "
        f"{streamed.heavy_to_light_ratio:g}x a light one alone) + {LIGHT_OPERATIONS} light, "
        "medians:",
        "",
        "| answer | first result (ms) | last result (ms) |",
        "| --- | --- | --- |",
        f"| application/jsonl | {streamed.streamed_first_ms:g} | {streamed.streamed_last_ms:g} |",
        f"| JSON array | {streamed.array_ms:g} | {streamed.array_ms:g} |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
