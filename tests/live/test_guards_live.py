"""Runtime guards against a real `batchery serve` process (issue 8's failure, replayed).

The slow query is held by a gate the test controls on PostgreSQL: a transaction of the test holds
`LOCK TABLE bakeries IN ACCESS EXCLUSIVE MODE`, so the server's read waits in the database (seen in
`pg_stat_activity`) until the test lets it go. Every wait is a bounded poll of a condition.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from tests.conftest import POSTGRES_UP, POSTGRES_URL
from tests.live.process import ServerProcess, plain_dsn, postgres_role, server_process

GATED = "{ bakeries { name orders(limitTo: 5) { id } } }"
QUICK = '{ bakery(id: "1") { name } }'
STATEMENTS = "batchery_db_statements_total"
STOPPED = "batchery_graphql_operations_stopped_total"
WAIT_SECONDS = 30  # upper bound of every poll: generous for a loaded 2-core machine
POLL_SECONDS = 0.02
SMALL = ("--bakeries", "6", "--orders-per-bakery", "5", "--suppliers", "4")

needs_postgres = pytest.mark.skipif(not POSTGRES_UP, reason="PostgreSQL not reachable")


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(POLL_SECONDS)  # polling a condition, bounded above


class Gate:
    """The test's lock on `bakeries`, and what pg_stat_activity says about the server's reads
    (asked on a connection of its own: inside a transaction the view is a snapshot)."""

    def __init__(self, conn: asyncpg.Connection, monitor: asyncpg.Connection, role: str) -> None:
        self.conn = conn
        self.monitor = monitor
        self.role = role
        self.transaction = conn.transaction()

    async def close(self) -> None:
        await self.transaction.start()
        await self.conn.execute("LOCK TABLE bakeries IN ACCESS EXCLUSIVE MODE")

    async def open(self) -> None:
        await self.transaction.rollback()

    async def waiting(self) -> int:
        count: int = await self.monitor.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
            self.role,
        )
        return count


@asynccontextmanager
async def gated_server(
    tmp_path: Path, **settings: str
) -> AsyncIterator[tuple[ServerProcess, Gate]]:
    async with postgres_role(POSTGRES_URL) as (url, role):
        with server_process(tmp_path, database_url=url, **settings) as server:
            await asyncio.to_thread(server.seed, *SMALL)
            await asyncio.to_thread(server.start)
            conn = await asyncpg.connect(plain_dsn(url))
            monitor = await asyncpg.connect(plain_dsn(url))
            try:
                gate = Gate(conn, monitor, role)
                await gate.close()
                yield server, gate
            finally:
                await conn.close()
                await monitor.close()


def raw_post(query: str) -> bytes:
    body = orjson.dumps({"query": query})
    head = (
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@needs_postgres
async def test_a_client_that_disconnects_stops_its_sql(tmp_path):
    async with gated_server(tmp_path) as (server, gate):
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(raw_post(GATED))
        await writer.drain()
        await until(lambda: _positive(gate.waiting()), "the server's read waits for the lock")
        statements = server.metric(STATEMENTS)

        writer.close()  # the client hangs up while its query waits in the database
        await until(lambda: _zero(gate.waiting()), "the server cancelled its statement")
        await gate.open()

        async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_SECONDS) as client:
            answer = await client.post("/graphql", json={"query": QUICK})
        assert answer.json()["data"]["bakery"]["name"]
        # The orders level never ran: the only statement since is the quick query's own.
        assert server.metric(STATEMENTS) == statements + 1
        assert server.metric(STOPPED, type="query", reason="cancelled") == 1


@needs_postgres
async def test_past_the_deadline_the_statement_is_cancelled_and_the_next_request_served(tmp_path):
    async with gated_server(tmp_path, execution_timeout_seconds="1") as (server, gate):
        async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_SECONDS) as client:
            response = await client.post("/graphql", json={"query": GATED})
            assert response.json()["data"] is None
            assert response.json()["errors"][0]["extensions"]["code"] == "TIMEOUT"
            # The lock is still held: only a cancelled statement stops waiting for it.
            await until(lambda: _zero(gate.waiting()), "the server cancelled its statement")
            await gate.open()
            again = await client.post("/graphql", json={"query": GATED})
        assert len(again.json()["data"]["bakeries"]) == 6
        assert server.metric(STOPPED, type="query", reason="timeout") == 1


@needs_postgres
async def test_sigterm_lets_the_request_in_flight_finish_then_exits(tmp_path):
    async with gated_server(tmp_path, shutdown_grace_seconds="20") as (server, gate):
        assert server.process is not None
        async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_SECONDS) as client:
            in_flight = asyncio.ensure_future(client.post("/graphql", json={"query": GATED}))
            await until(lambda: _positive(gate.waiting()), "the request waits for the lock")
            server.process.send_signal(signal.SIGTERM)
            await until(lambda: _refused(server.port), "the server stops accepting connections")
            await gate.open()
            response = await in_flight
        assert response.status_code == 200
        assert len(response.json()["data"]["bakeries"]) == 6
        code = await asyncio.to_thread(server.process.wait, WAIT_SECONDS)
        assert code == 0


async def _positive(count: Awaitable[int]) -> bool:
    return await count > 0


async def _zero(count: Awaitable[int]) -> bool:
    return await count == 0


async def _refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    return False


# The issue's query: refused by the node budget (and by the cost analysis, once it runs first).
DEEP = "{ bakeries " + "{ suppliers { bakeries " * 7 + "{ id }" + " } }" * 7 + " }"
# The heaviest query the node budget allows on the demo data: 12 x (50 bakeries + 10,000 orders
# + 10,000 order.bakery objects) = 240,600 nodes, ~25 MB of JSON.
HEAVY = (
    "{ "
    + " ".join(
        f"a{i}: bakeries {{ orders(limitTo: 1000) {{ id writtenPhrase currentTotal status "
        "createdAt externalId bakery { name region } } }"
        for i in range(12)
    )
    + " }"
)
HEALTHZ_BOUND_SECONDS = 1.0  # generous: the figure measured is in docs/performance.md
RSS_GROWTH_BOUND = 500 * 1024 * 1024


async def healthz_while(server: ServerProcess, query: str) -> tuple[httpx.Response, list[float]]:
    """Send `query`, and ask /healthz (on another connection) again and again until it is
    answered; the health probes' latencies."""
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=120) as heavy,
        httpx.AsyncClient(base_url=server.url, timeout=120) as probe,
    ):
        running = asyncio.ensure_future(heavy.post("/graphql", json={"query": query}))
        latencies = []
        while not running.done():
            started = time.perf_counter()
            assert (await probe.get("/healthz")).status_code == 200
            latencies.append(time.perf_counter() - started)
        return await running, latencies


async def test_healthz_answers_while_the_heaviest_allowed_query_runs(tmp_path):
    # The cost analysis refuses the deep query before it runs: turned off here, the runtime
    # guards are what stands (static cost is an estimate; these hold when it is wrong).
    with server_process(
        tmp_path, gc_freeze="true", max_operation_cost="0", max_request_cost="0"
    ) as server:
        await asyncio.to_thread(server.seed)  # the demo data: 50 bakeries x 200 orders
        await asyncio.to_thread(server.start)
        baseline = server.peak_rss_bytes()

        refused, latencies = await healthz_while(server, DEEP)
        assert refused.json()["errors"][0]["extensions"]["code"] == "NODE_LIMIT_EXCEEDED"
        assert server.peak_rss_bytes() - baseline < RSS_GROWTH_BOUND

        response, latencies = await healthz_while(server, HEAVY)
        body = response.json()
        assert "errors" not in body and len(body["data"]["a11"][0]["orders"]) == 200
        assert latencies and max(latencies) < HEALTHZ_BOUND_SECONDS
        assert server.peak_rss_bytes() - baseline < RSS_GROWTH_BOUND
        growth = (server.peak_rss_bytes() - baseline) >> 20
        ordered = sorted(latencies)
        print(  # the figure for docs/performance.md (pytest -s)
            f"healthz during the heavy query: {len(ordered)} probes, "
            f"p50 {ordered[len(ordered) // 2] * 1000:.1f} ms, "
            f"p99 {ordered[int(len(ordered) * 0.99)] * 1000:.0f} ms, "
            f"max {ordered[-1] * 1000:.0f} ms, peak RSS +{growth} MiB"
        )


async def test_batchery_serve_bounds_the_request_head(tmp_path):
    # uvicorn's httptools protocol alone read a 30 MB header whole; `batchery serve` runs the
    # bounded one (app.http.protocol.py) and says which setting to change.
    with server_process(tmp_path, max_request_head_bytes="16384") as server:
        server.seed(*SMALL)
        server.start()
        async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_SECONDS) as client:
            refused = await client.get("/healthz", headers={"X-Big": "v" * 40_000})
            served = await client.get("/healthz", headers={"X-Small": "v" * 8_000})
    assert refused.status_code == 431
    assert refused.json()["errors"][0]["extensions"]["setting"] == "BATCHERY_MAX_REQUEST_HEAD_BYTES"
    assert served.status_code == 200
