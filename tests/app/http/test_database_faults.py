"""A database that goes away and comes back: stable codes while it is gone, 503 with Retry-After,
a readiness probe that says so without internals, and everything working again without a restart.

PostgreSQL is reached through a proxy the test cuts (tests/faults.py); SQLite loses the directory
of its file. The shared PostgreSQL itself is never stopped.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import create_engine, create_tables
from app.db.reads import bakeries
from app.db.seed import seed
from app.main import create_app
from app.settings import Settings
from tests.conftest import POSTGRES_UP, POSTGRES_URL, SMALL_SEED
from tests.faults import CuttableProxy

QUERY = {"query": "{ bakeries(first: 2) { id name } }"}
ADD_MONEY = {"query": 'mutation { addMoney(orderId: "1", dollarsToAdd: 5) { id currentTotal } }'}


def one_bakery() -> dict[str, str]:
    return {"name": f"Outage {uuid.uuid4().hex[:8]}", "region": "CENTRAL"}


def bulk() -> dict[str, object]:
    return {"operation": "CREATE", "records": [{"data": one_bakery()} for _ in range(3)]}


@asynccontextmanager
async def served(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(data_dir=tmp_path / "data"), engine=engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def statements_counted(client: httpx.AsyncClient) -> float:
    text_format = (await client.get("/metrics")).text
    line = next(x for x in text_format.splitlines() if x.startswith("batchery_db_statements_total"))
    return float(line.split()[1])


async def assert_everything_fails_as_unavailable(client: httpx.AsyncClient) -> None:
    query = (await client.post("/graphql", json=QUERY)).json()
    assert query["data"] is None
    assert [e["extensions"]["code"] for e in query["errors"]] == ["DATABASE_UNAVAILABLE"]
    assert "retry" in query["errors"][0]["message"]

    mutation = (await client.post("/graphql", json=ADD_MONEY)).json()
    assert [e["extensions"]["code"] for e in mutation["errors"]] == ["DATABASE_UNAVAILABLE"]

    batch = (await client.post("/graphql", json=[QUERY, ADD_MONEY])).json()
    codes = [e["extensions"]["code"] for result in batch for e in result["errors"]]
    assert codes == ["DATABASE_UNAVAILABLE", "DATABASE_UNAVAILABLE"]

    for response in (
        await client.get("/api/bakeries"),
        await client.get("/api/bakeries/1"),
        await client.post("/api/bakeries", json=one_bakery()),
        await client.post("/api/bakeries/bulk", json=bulk()),
        await client.post(
            "/api/bakeries", json=one_bakery(), headers={"Idempotency-Key": uuid.uuid4().hex}
        ),
        await client.get("/photos/1"),
    ):
        assert response.status_code == 503, (response.request.url, response.text)
        assert response.headers["content-type"].startswith("application/json")
        assert int(response.headers["retry-after"]) > 0
        assert "DATABASE_UNAVAILABLE" in response.text
        assert "Internal" not in response.text and "SELECT" not in response.text

    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "database": "unavailable"}
    assert int(ready.headers["retry-after"]) > 0
    assert (await client.get("/healthz")).status_code == 200


async def assert_everything_works(client: httpx.AsyncClient) -> None:
    assert (await client.get("/readyz")).json() == {"status": "ok", "database": "ok"}
    query = (await client.post("/graphql", json=QUERY)).json()
    assert "errors" not in query and len(query["data"]["bakeries"]) == 2
    mutation = (await client.post("/graphql", json=ADD_MONEY)).json()
    assert "errors" not in mutation, mutation
    assert (await client.get("/api/bakeries/1")).status_code == 200
    assert (await client.post("/api/bakeries", json=one_bakery())).status_code == 201
    assert (await client.post("/api/bakeries/bulk", json=bulk())).status_code == 200
    keyed = await client.post(
        "/api/bakeries", json=one_bakery(), headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    assert keyed.status_code == 201


async def count_bakeries(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(bakeries))).scalar_one())


@pytest.mark.skipif(not POSTGRES_UP, reason=f"PostgreSQL not reachable at {POSTGRES_URL}")
async def test_postgresql_cut_off_answers_unavailable_and_heals_without_restart(tmp_path):
    url = make_url(POSTGRES_URL)
    schema = f"batchery_faults_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA {schema}"))
    proxy = await CuttableProxy.start(url.host or "127.0.0.1", url.port or 5432)
    through_proxy = url.set(host="127.0.0.1", port=proxy.port)
    engine = create_engine(
        through_proxy.render_as_string(hide_password=False),
        connect_args={"server_settings": {"search_path": schema}},
    )
    try:
        await create_tables(engine)
        await seed(engine, SMALL_SEED)
        async with served(engine, tmp_path) as client:
            await assert_everything_works(client)
            before = await count_bakeries(engine)

            await proxy.cut()
            await assert_everything_fails_as_unavailable(client)

            await proxy.restore()
            await assert_everything_works(client)
            # While it was cut nothing was written: only the successful writes above count.
            assert await count_bakeries(engine) == before + 1 + 3 + 1

            # A quiet outage (no request while it lasted): the pool's connections died unseen;
            # the first request afterwards still works (they are checked before use).
            await proxy.cut()
            await proxy.restore()
            await assert_everything_works(client)
        assert proxy.connections > 0
    finally:
        await proxy.close()
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        await admin.dispose()


async def test_sqlite_file_gone_answers_unavailable_and_heals_without_restart(tmp_path):
    folder = tmp_path / "db"
    engine = create_engine(f"sqlite+aiosqlite:///{folder / 'batchery.db'}")
    await create_tables(engine)
    await seed(engine, SMALL_SEED)
    try:
        async with served(engine, tmp_path) as client:
            await assert_everything_works(client)
            before = await count_bakeries(engine)

            # The volume goes away: connections already open would still hold the old file, so
            # drop them as a restart of the pool would; new ones cannot open the file.
            folder.rename(tmp_path / "elsewhere")
            await engine.dispose()
            await assert_everything_fails_as_unavailable(client)

            (tmp_path / "elsewhere").rename(folder)
            await assert_everything_works(client)
            assert await count_bakeries(engine) == before + 1 + 3 + 1
    finally:
        await engine.dispose()


async def test_readiness_probes_are_not_counted_as_statements(app_client):
    async with app_client() as client:
        before = await statements_counted(client)
        for _ in range(3):
            assert (await client.get("/readyz")).status_code == 200
            assert (await client.get("/healthz")).status_code == 200
        assert await statements_counted(client) == before
        await client.post("/graphql", json=QUERY)
        assert await statements_counted(client) > before
