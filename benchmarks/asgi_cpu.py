"""CPU time per request through `create_app()`'s whole ASGI stack, in-process (no uvicorn, no
sockets): middleware, routing, the endpoint, the executor, rendering. For profiling the small
per-request costs `make bench` cannot separate from uvicorn and the machine's noise.

    .venv/bin/python -m benchmarks.asgi_cpu                    # `{ __typename }`, 5 x 3,000
    .venv/bin/python -m benchmarks.asgi_cpu 2000 --profile     # then cProfile, by cumulative time
    .venv/bin/python -m benchmarks.asgi_cpu 300 --small        # the bench's `small`, seeded
    SORT=tottime TOP=60 .venv/bin/python -m benchmarks.asgi_cpu 3000 --profile
    .venv/bin/python -m benchmarks.asgi_cpu 2000 --uvicorn     # through uvicorn's protocol too

Process CPU time (`time.process_time`) over many repetitions: compare two checkouts by running
this in each, alternately, and reading the lowest of the repetitions (other work on a shared
machine only ever adds). `{ __typename }` needs no database content; `--small` seeds the app's
SQLite file with the bench's demo data (50 bakeries x 200 orders) first. The app's start-up
creates that file in a temporary data directory.

`--uvicorn` feeds the request's bytes to the HTTP protocol `batchery serve` runs
(`app.http.protocol.BoundedHttpToolsProtocol`, on uvloop, `batchery serve`'s logging at level
warning) over a fake transport, one keep-alive connection: httptools' parsing, uvicorn's
request cycle and response writing, the access log's decision, without sockets or the kernel.
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


async def post(
    app: Starlette, body: bytes, headers: list[tuple[bytes, bytes]]
) -> list[dict[str, Any]]:
    """One POST /graphql, as uvicorn would hand it over (the client stays until its answer): the
    ASGI messages the app sent. The in-process benchmarks (this one, query_cpu, pg_reads) drive
    the app through this."""
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
    return sent


async def one(
    app: Starlette, body: bytes = BODY, headers: list[tuple[bytes, bytes]] = HEADERS
) -> list[dict[str, Any]]:
    """One POST that must succeed with data."""
    sent = await post(app, body, headers)
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


class _Transport(asyncio.Transport):
    """What the protocol writes to, kept; a peer that reads everything at once."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5000)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def measure_uvicorn(requests: int, repetitions: int) -> list[float]:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from app.http.protocol import BoundedHttpToolsProtocol
    from app.logs import access_log, log_config

    raw = (
        b"POST /graphql HTTP/1.1\r\n"
        + b"".join(name + b": " + value + b"\r\n" for name, value in HEADERS)
        + b"\r\n"
        + BODY
    )
    with tempfile.TemporaryDirectory(prefix="bench-asgi-") as data_dir:
        environ = {**os.environ, "BATCHERY_DATA_DIR": data_dir, "BATCHERY_DATABASE_URL": ""}
        app = create_app(Settings.from_env(environ))
        config = Config(
            app=app,
            http=BoundedHttpToolsProtocol,
            log_level="warning",
            log_config=log_config("warning"),
            access_log=access_log("warning"),
        )
        config.load()
        state = ServerState()
        async with app.router.lifespan_context(app):
            protocol = config.http_protocol_class(config=config, server_state=state, app_state={})
            transport = _Transport()
            protocol.connection_made(transport)

            async def request() -> None:
                protocol.data_received(raw)
                await asyncio.gather(*state.tasks)

            for _ in range(200):
                await request()
            if not transport.written[-2].startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"unexpected answer: {transport.written[-2:]}")
            results = []
            for _ in range(repetitions):
                transport.written.clear()
                started = time.process_time()
                for _ in range(requests):
                    await request()
                results.append((time.process_time() - started) / requests * 1e6)
            return results


def main(argv: list[str]) -> int:
    small = "--small" in argv
    requests = int(next((a for a in argv if a.isdigit()), "300" if small else "3000"))
    body, name = (SMALL_BODY, "small") if small else (BODY, HELLO)
    if "--uvicorn" in argv:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            results = runner.run(measure_uvicorn(requests, 5))
        name += " (uvicorn's protocol)"
    else:
        results = asyncio.run(measure(requests, 5, "--profile" in argv, body))
    print(
        f"{name} through the ASGI stack: {min(results):.1f} us CPU per request at "
        f"least, {sorted(results)[len(results) // 2]:.1f} median "
        f"({', '.join(f'{r:.1f}' for r in results)}; {requests:,} requests each)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
