"""CPU per request of the bench's queries (`big`, `small`; `deep` when named) through the whole
ASGI stack, in-process, for Batchery and for the floor (`benchmarks/floor/app.py`) on one seeded
SQLite file (or, with `--postgresql`, a PostgreSQL database made for the run at
`DEFAULT_POSTGRES_URL`'s server, then dropped; the floor then reads through asyncpg directly).

    .venv/bin/python -m benchmarks.query_cpu                 # big and small, 7 x 40 requests each
    .venv/bin/python -m benchmarks.query_cpu deep            # or any of big, small, deep
    .venv/bin/python -m benchmarks.query_cpu big --profile   # then cProfile of each, by tottime
    .venv/bin/python -m benchmarks.query_cpu big --profile --cumulative
    .venv/bin/python -m benchmarks.query_cpu --postgresql     # on a database of its own there

Lowest of the repetitions of `time.process_time` (other work on a shared machine only ever adds),
the servers measured alternately so drift hits both. No uvicorn, no sockets: what `make bench`
charges on top (the HTTP parser, the event loop's polling) is the same for both servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
from starlette.applications import Starlette

from app.db.seed import SeedSize
from app.main import create_app
from app.settings import Settings
from benchmarks import scenarios
from benchmarks.asgi_cpu import headers_for, post
from benchmarks.backends import DEFAULT_POSTGRES_URL, database, seeded

QUERIES = {"big": scenarios.BIG, "small": scenarios.SMALL, "deep": scenarios.DEEP}


async def one(app: Starlette, body: bytes) -> bytes:
    """One POST, as uvicorn would hand it over; the client stays until its answer."""
    sent = await post(app, body, headers_for(body))
    if sent[0]["status"] != 200:
        raise RuntimeError(f"unexpected answer: {sent}")
    return b"".join(m.get("body", b"") for m in sent[1:])


async def cpu_per_request(app: Starlette, body: bytes, requests: int) -> float:
    started = time.process_time()
    for _ in range(requests):
        await one(app, body)
    return (time.process_time() - started) / requests * 1e3


@contextlib.asynccontextmanager
async def servers(data_dir: Path, url: str = "") -> AsyncIterator[dict[str, Starlette]]:
    """Batchery and the floor on one database, seeded here: `url`, or an SQLite file."""
    url = url or f"sqlite+aiosqlite:///{(data_dir / 'batchery.db').resolve()}"
    await seeded(url, SeedSize())
    os.environ["BATCHERY_DATA_DIR"] = str(data_dir)
    os.environ["BATCHERY_DATABASE_URL"] = url
    from benchmarks.floor.app import app as floor  # reads the environment at start-up

    batchery = create_app(Settings.from_env(dict(os.environ)))
    async with batchery.router.lifespan_context(batchery), floor.router.lifespan_context(floor):
        yield {"batchery": batchery, "floor": floor}


async def measure(
    names: list[str],
    requests: int,
    repetitions: int,
    profile: bool,
    sort: str = "tottime",
    url: str = "",
) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-query-cpu-") as data_dir:
        async with servers(Path(data_dir), url) as apps:
            for name in names:
                body = orjson.dumps({"query": QUERIES[name]})
                answers = {}
                for server, app in apps.items():
                    answers[server] = orjson.loads(await one(app, body))["data"]
                if answers["batchery"] != answers["floor"]:
                    raise RuntimeError(f"{name}: Batchery and the floor answer differently")
                for app in apps.values():
                    for _ in range(requests):
                        await one(app, body)
                results: dict[str, list[float]] = {server: [] for server in apps}
                for _ in range(repetitions):
                    for server, app in apps.items():
                        results[server].append(await cpu_per_request(app, body, requests))
                least = {server: min(values) for server, values in results.items()}
                print(
                    f"{name}: Batchery {least['batchery']:.2f} ms CPU per request, floor "
                    f"{least['floor']:.2f} ms: {least['batchery'] / least['floor']:.3f}x "
                    f"(lowest of {repetitions} x {requests}; medians "
                    + ", ".join(f"{s} {sorted(v)[len(v) // 2]:.2f}" for s, v in results.items())
                    + ")"
                )
                for server in apps if profile else ():
                    profiler = cProfile.Profile()
                    profiler.enable()
                    for _ in range(requests):
                        await one(apps[server], body)
                    profiler.disable()
                    print(f"{name}: {server}, {requests} requests")
                    pstats.Stats(profiler).sort_stats(sort).print_stats(40)


def main(argv: list[str]) -> int:
    names = [a for a in argv if a in QUERIES] or ["big", "small"]
    requests = int(next((a for a in argv if a.isdigit()), "40"))
    sort = "cumulative" if "--cumulative" in argv else "tottime"
    profile = "--profile" in argv
    if "--postgresql" not in argv:
        asyncio.run(measure(names, requests, 7, profile, sort))
        return 0
    with (
        tempfile.TemporaryDirectory(prefix="bench-query-cpu-") as workdir,
        database("postgresql", Path(workdir), DEFAULT_POSTGRES_URL) as url,
    ):
        asyncio.run(measure(names, requests, 7, profile, sort, url))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
