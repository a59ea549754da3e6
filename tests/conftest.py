"""Test fixtures: real databases only. Every database test runs on SQLite and, when it answers,
on PostgreSQL (each test session in a schema of its own, so parallel runs never collide)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import create_engine, create_tables, drop_tables
from app.db.seed import SeedSize, seed
from app.main import create_app
from app.settings import Settings

POSTGRES_URL = os.environ.get(
    "BATCHERY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
# The seeded read-only data set: 50 bakeries, so "1, 5 and 50 parents" can all be asked for.
READ_SEED = SeedSize(bakeries=50, orders_per_bakery=60, suppliers=12, seed=7)
SMALL_SEED = SeedSize(bakeries=6, orders_per_bakery=5, suppliers=4, seed=11)


def _postgres_reachable() -> bool:
    url = make_url(POSTGRES_URL)
    try:
        with socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=1):
            return True
    except OSError:
        return False


POSTGRES_UP = _postgres_reachable()
if os.environ.get("CI") and not POSTGRES_UP:
    raise RuntimeError(f"CI must test PostgreSQL too, but nothing answers at {POSTGRES_URL}")

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not POSTGRES_UP, reason=f"PostgreSQL not reachable at {POSTGRES_URL}"
        ),
    ),
]


class Databases:
    """Hands out empty, isolated databases of one backend."""

    def __init__(self, backend: str, tmp: Path) -> None:
        self.backend = backend
        self.tmp = tmp
        self.schemas: list[str] = []

    async def new(self) -> AsyncEngine:
        name = f"batchery_test_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            return create_engine(f"sqlite+aiosqlite:///{self.tmp / (name + '.db')}")
        admin = create_engine(POSTGRES_URL)
        async with admin.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {name}"))
        await admin.dispose()
        self.schemas.append(name)
        return create_engine_in_schema(name)

    async def cleanup(self) -> None:
        if not self.schemas:
            return
        admin = create_engine(POSTGRES_URL)
        async with admin.begin() as conn:
            for name in self.schemas:
                await conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        await admin.dispose()


def create_engine_in_schema(schema: str) -> AsyncEngine:
    from sqlalchemy.ext.asyncio import create_async_engine

    return create_async_engine(
        POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}}
    )


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture(scope="session")
async def databases(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Databases]:
    dbs = Databases(backend, tmp_path_factory.mktemp(backend))
    yield dbs
    await dbs.cleanup()


@pytest_asyncio.fixture(scope="session")
async def read_engine(databases: Databases) -> AsyncIterator[AsyncEngine]:
    """A seeded database that tests only read: shared by the whole session."""
    engine = await databases.new()
    await create_tables(engine)
    await seed(engine, READ_SEED)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture
async def engine(databases: Databases) -> AsyncIterator[AsyncEngine]:
    """A fresh, small, seeded database for a test that writes."""
    engine = await databases.new()
    await create_tables(engine)
    await seed(engine, SMALL_SEED)
    yield engine
    await drop_tables(engine)
    await engine.dispose()


@pytest_asyncio.fixture
async def empty_engine(databases: Databases) -> AsyncIterator[AsyncEngine]:
    engine = await databases.new()
    await create_tables(engine)
    yield engine
    await drop_tables(engine)
    await engine.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


AppClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def app_client(engine: AsyncEngine, settings: Settings) -> AppClient:
    """`async with app_client(max_files=2) as client:` - the app on the test's database, with
    settings changed as given, its lifespan run, in the test's own event loop."""

    @asynccontextmanager
    async def make(**changes: object) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings.replace(**changes), engine=engine)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                c.app = app  # type: ignore[attr-defined]
                yield c

    return make


@pytest_asyncio.fixture
async def client(app_client: AppClient) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client() as c:
        yield c


@pytest.fixture(autouse=True)
def _no_env_leak(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("BATCHERY_") and name != "BATCHERY_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    yield
