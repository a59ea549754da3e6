"""CPU time per request through `create_app()`'s whole ASGI stack, in-process (no uvicorn, no
sockets): middleware, routing, the endpoint, the executor, rendering. For profiling the small
per-request costs `make bench` cannot separate from uvicorn and the machine's noise.

    .venv/bin/python -m benchmarks.asgi_cpu                    # `{ __typename }`, 5 x 3,000
    .venv/bin/python -m benchmarks.asgi_cpu 2000 --profile     # then cProfile, by cumulative time
    .venv/bin/python -m benchmarks.asgi_cpu 300 --small        # the bench's `small`, seeded
    SORT=tottime TOP=60 .venv/bin/python -m benchmarks.asgi_cpu 3000 --profile

Process CPU time (`time.process_time`) over many repetitions: compare two checkouts by running
this in each, alternately, and reading the lowest of the repetitions (other work on a shared
machine only ever adds). `{ __typename }` needs no database content; `--small` seeds the app's
SQLite file with the bench's demo data (50 bakeries x 200 orders) first. The app's start-up
creates that file in a temporary data directory.
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
import time
from typing import Any

import orjson
from starlette.applications import Starlette

from app.db.seed import SeedSize, seed
from app.main import create_app
from app.settings import Settings
from benchmarks.scenarios import HELLO, SMALL

BODY = orjson.dumps({"query": HELLO})
SMALL_BODY = orjson.dumps({"query": SMALL})
DEMO_DATA = SeedSize(bakeries=50, orders_per_bakery=200)


def headers_for(body: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"accept", b"*/*"),
        (b"user-agent", b"wrk"),
    ]


HEADERS = headers_for(BODY)


async def one(
    app: Starlette, body: bytes = BODY, headers: list[tuple[bytes, bytes]] = HEADERS
) -> list[dict[str, Any]]:
    """One POST, as uvicorn would hand it over; the client stays until its answer."""
    sent: list[dict[str, Any]] = []
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # never disconnects
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    answer = sent[1]["body"]
    if sent[0]["status"] != 200 or b'"errors"' in answer or b"[]" in answer:
        raise RuntimeError(f"unexpected answer: {sent}")
    return sent


async def measure(
    requests: int, repetitions: int, profile: bool, body: bytes = BODY
) -> list[float]:
    """Microseconds of CPU per request, per repetition (after 200 to warm up)."""
    with tempfile.TemporaryDirectory(prefix="bench-asgi-") as data_dir:
        environ = {
            **os.environ,
            "BATCHERY_DATA_DIR": data_dir,
            "BATCHERY_DATABASE_URL": "",  # the data directory's own SQLite file
        }
        app = create_app(Settings.from_env(environ))
        async with app.router.lifespan_context(app):
            if body != BODY:
                await seed(app.state.engine, DEMO_DATA)
            return await _measure(app, requests, repetitions, profile, body)


async def _measure(
    app: Starlette, requests: int, repetitions: int, profile: bool, body: bytes
) -> list[float]:
    headers = headers_for(body)
    for _ in range(200):
        await one(app, body, headers)
    results = []
    for _ in range(repetitions):
        started = time.process_time()
        for _ in range(requests):
            await one(app, body, headers)
        results.append((time.process_time() - started) / requests * 1e6)
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(requests):
            await one(app, body, headers)
        profiler.disable()
        pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(
            int(os.environ.get("TOP", "40"))
        )
    return results


def main(argv: list[str]) -> int:
    small = "--small" in argv
    requests = int(next((a for a in argv if a.isdigit()), "300" if small else "3000"))
    body, name = (SMALL_BODY, "small") if small else (BODY, HELLO)
    results = asyncio.run(measure(requests, 5, "--profile" in argv, body))
    print(
        f"{name} through the ASGI stack: {min(results):.1f} us CPU per request at "
        f"least, {sorted(results)[len(results) // 2]:.1f} median "
        f"({', '.join(f'{r:.1f}' for r in results)}; {requests:,} requests each)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
