"""CPU of Batchery's reads on PostgreSQL, in-process: asyncpg directly (`Reader` today) against
SQLAlchemy's execute and result processing (what `Reader` did before issue 12's round three).

    .venv/bin/python -m benchmarks.pg_reads            # 7 repetitions
    .venv/bin/python -m benchmarks.pg_reads 15
    .venv/bin/python -m benchmarks.pg_reads 3 --profile big   # then cProfile of asyncpg's `big`

Seeds a PostgreSQL database of its own (`BENCH_POSTGRES_URL`, default the test server), 50 bakeries
x 200 orders as `make bench` does, then measures, alternating the two paths in one process:
`Reader.newest_orders` for 50 bakeries x 50 (2,500 rows), and the whole `small`, `big` and `deep`
GraphQL requests through the app's ASGI stack (no sockets), one at a time, and the same requests
to the PostgreSQL floor (`benchmarks/floor/`, asyncpg directly, JSON by hand). Process CPU time
(`time.process_time`); read the lowest of the repetitions (other work only ever adds).
"""

from __future__ import annotations

import asyncio
import cProfile
import functools
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
from starlette.applications import Starlette

from app.db.reads import Reader
from app.db.seed import SeedSize
from app.main import create_app
from app.settings import Settings
from benchmarks.asgi_cpu import headers_for, post
from benchmarks.backends import DEFAULT_POSTGRES_URL, database, seeded
from benchmarks.scenarios import BIG, DEEP, SMALL

SEED = SeedSize(bakeries=50, orders_per_bakery=200)
# Calls per repetition: about 0.2-0.5 s of CPU each.
QUERIES = {"small": SMALL, "big": BIG, "deep": DEEP}
CALLS = {"newest_orders": 40, "small": 200, "big": 30, "deep": 30}


async def request(app: Starlette, body: bytes) -> None:
    sent = await post(app, body, headers_for(body))
    if sent[0]["status"] != 200 or b'"errors"' in sent[1]["body"]:
        raise RuntimeError(f"unexpected answer: {sent[:2]}")


async def cpu_ms(call: Callable[[], Awaitable[object]], calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        await call()
    return (time.process_time() - started) / calls * 1e3


async def measure(
    url: str, repetitions: int, profile: str | None = None
) -> dict[str, dict[str, list[float]]]:
    with tempfile.TemporaryDirectory(prefix="bench-pg-reads-") as data_dir:
        settings = Settings.from_env(
            {**os.environ, "BATCHERY_DATA_DIR": data_dir, "BATCHERY_DATABASE_URL": url}
        )
        os.environ["BATCHERY_DATABASE_URL"] = url
        os.environ["BATCHERY_DATA_DIR"] = data_dir
        from benchmarks.floor.app import app as floor  # reads the environment at start-up

        app = create_app(settings)
        async with app.router.lifespan_context(app), floor.router.lifespan_context(floor):
            reader: Reader = app.state.reader
            runner = getattr(reader, "asyncpg", None)  # None: a checkout from before it
            paths = ("asyncpg", "sqlalchemy") if runner is not None else ("sqlalchemy",)
            ids = list(range(1, 51))
            bodies = {name: orjson.dumps({"query": q}) for name, q in QUERIES.items()}
            work: dict[str, Callable[[], Awaitable[object]]] = {
                "newest_orders": lambda: reader.newest_orders(ids, 50),
                **{name: functools.partial(request, app, body) for name, body in bodies.items()},
            }
            results: dict[str, dict[str, list[float]]] = {
                name: {"asyncpg": [], "sqlalchemy": [], "floor": []} for name in work
            }
            for name, call in work.items():
                for _ in range(3):  # warm up both paths
                    for path in paths:
                        reader.asyncpg = runner if path == "asyncpg" else None
                        await call()
                for _ in range(repetitions):
                    for path in paths:
                        reader.asyncpg = runner if path == "asyncpg" else None
                        results[name][path].append(await cpu_ms(call, CALLS[name]))
                    if name in bodies:  # the floor: the same SQL through asyncpg, JSON by hand
                        on_floor = functools.partial(request, floor, bodies[name])
                        results[name]["floor"].append(await cpu_ms(on_floor, CALLS[name]))
            reader.asyncpg = runner
            if profile is not None:
                profiler = cProfile.Profile()
                profiler.enable()
                for _ in range(CALLS[profile]):
                    await work[profile]()
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
            return results


def main(argv: list[str]) -> int:
    repetitions = int(next((a for a in argv if a.isdigit()), "7"))
    profile = argv[argv.index("--profile") + 1] if "--profile" in argv else None
    postgres_url = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    with (
        tempfile.TemporaryDirectory(prefix="bench-pg-reads-") as workdir,
        database("postgresql", Path(workdir), postgres_url) as url,
    ):
        asyncio.run(seeded(url, SEED))
        results = asyncio.run(measure(url, repetitions, profile))
    print(f"CPU ms per call, lowest (median) of {repetitions} repetitions, PostgreSQL, 50 x 200")
    print(f"{'what':<32}{'SQLAlchemy':>16}{'asyncpg':>16}{'ratio':>7}{'floor':>16}{'vs floor':>9}")
    labels = {
        "newest_orders": "Reader.newest_orders 50 x 50",
        "small": "small (GraphQL, ASGI)",
        "big": "big (GraphQL, ASGI)",
        "deep": "deep (GraphQL, ASGI)",
    }
    for name, paths in results.items():
        cells = []
        for path in ("sqlalchemy", "asyncpg", "floor"):
            values = sorted(paths[path]) or [float("nan")]
            cells.append(f"{values[0]:.2f} ({values[len(values) // 2]:.2f})")
        least = {path: min(values or [float("nan")]) for path, values in paths.items()}
        ratio = least["asyncpg"] / least["sqlalchemy"]
        versus = least["asyncpg"] / least["floor"]
        print(
            f"{labels[name]:<32}{cells[0]:>16}{cells[1]:>16}{ratio:>7.2f}{cells[2]:>16}"
            f"{versus:>9.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
