"""SQL statements (and wall time) per 200-record bulk batch, per operation and mode.

    .venv/bin/python benchmarks/bulk_statements.py     # SQLite, and PostgreSQL if it answers

(BATCHERY_TEST_POSTGRES_URL chooses the PostgreSQL server, as for the tests.)

Statements are counted as the test suite counts them (`app.db.statements`: transaction control,
i.e. BEGIN / COMMIT / SAVEPOINT, left out). Each cell is measured on a fresh small database.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.bulk import BAKERIES, BatchOptions, BatchRecord, BatchRequest, BulkEngine, Operation
from app.db.engine import create_engine, create_tables
from app.db.seed import SeedSize, seed
from app.db.statements import count_statements

N = 200
POSTGRES_URL = os.environ.get(
    "BATCHERY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def bakery(i: int, prefix: str) -> BatchRecord:
    return BatchRecord(
        data={"name": f"{prefix} {i}", "region": "CENTRAL", "externalId": f"{prefix}-{i}"}
    )


def cases(ids: list[int]) -> dict[str, list[BatchRecord]]:
    upsert = [BatchRecord(external_id=f"B-{i}", data={"name": f"V {i}"}) for i in range(N // 2)]
    upsert += [
        BatchRecord(external_id=f"W-{i}", data={"name": f"W {i}", "region": "CENTRAL"})
        for i in range(N // 2)
    ]
    # One record the database refuses but the checks cannot see (a unique name, below).
    clash = [bakery(i, "C") for i in range(N)]
    clash[N // 2] = BatchRecord(data={"name": "B 0", "region": "CENTRAL"})
    return {
        "CREATE": [bakery(i, "N") for i in range(N)],
        "UPDATE": [BatchRecord(id=str(pk), data={"name": f"U {pk}"}) for pk in ids],
        "UPSERT (100 upd + 100 new)": upsert,
        "DELETE": [BatchRecord(id=str(pk)) for pk in ids],
        "CREATE, 1 invalid (checks)": [bakery(i, "I") for i in range(N - 1)]
        + [BatchRecord(data={"name": "", "region": "CENTRAL"})],
        "CREATE, 1 refused by the db": clash,
    }


async def measure(
    new_engine: Callable[[], asyncio.Future[AsyncEngine]],
) -> list[tuple[str, str, int, float]]:
    rows = []
    for label in cases([]):
        for mode, options in {
            "atomic": BatchOptions(atomic=True),
            "not atomic": BatchOptions(atomic=False),
            "validateOnly": BatchOptions(validate_only=True),
        }.items():
            engine = await new_engine()
            try:
                await create_tables(engine)
                await seed(engine, SeedSize(bakeries=6, orders_per_bakery=5, suppliers=4))
                async with engine.begin() as conn:
                    await conn.execute(text("CREATE UNIQUE INDEX ix_bench_name ON bakeries (name)"))
                bulk = BulkEngine(engine)
                made = await bulk.run(
                    BAKERIES, BatchRequest(Operation.CREATE, [bakery(i, "B") for i in range(N)])
                )
                records = cases([result.id for result in made.results if result.id])[label]
                operation = Operation[label.split()[0].rstrip(",")]
                with count_statements(engine) as log:
                    started = time.perf_counter()
                    await bulk.run(BAKERIES, BatchRequest(operation, records, options))
                    elapsed = (time.perf_counter() - started) * 1000
                rows.append((label, mode, log.count, elapsed))
            finally:
                await engine.dispose()
    return rows


def postgres_up() -> bool:
    url = make_url(POSTGRES_URL)
    try:
        with socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=1):
            return True
    except OSError:
        return False


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:

        async def sqlite() -> AsyncEngine:
            return create_engine(f"sqlite+aiosqlite:///{Path(tmp) / uuid.uuid4().hex}.db")

        results = {"SQLite": await measure(sqlite)}
    schemas: list[str] = []
    if postgres_up():

        async def postgres() -> AsyncEngine:
            name = f"bench_{uuid.uuid4().hex[:12]}"
            admin = create_engine(POSTGRES_URL)
            async with admin.begin() as conn:
                await conn.execute(text(f"CREATE SCHEMA {name}"))
            await admin.dispose()
            schemas.append(name)
            return create_async_engine(
                POSTGRES_URL, connect_args={"server_settings": {"search_path": name}}
            )

        try:
            results["PostgreSQL"] = await measure(postgres)
        finally:
            admin = create_engine(POSTGRES_URL)
            async with admin.begin() as conn:
                for name in schemas:
                    await conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
            await admin.dispose()
    for backend, rows in results.items():
        print(f"\n{backend}: statements per {N}-record batch (wall ms)")
        print("| batch | atomic | not atomic | validateOnly |\n| --- | --- | --- | --- |")
        by_label: dict[str, dict[str, str]] = {}
        for label, mode, count, elapsed in rows:
            by_label.setdefault(label, {})[mode] = f"{count} ({elapsed:.0f} ms)"
        for label, modes in by_label.items():
            print(
                f"| {label} | {modes['atomic']} | {modes['not atomic']} | {modes['validateOnly']} |"
            )


if __name__ == "__main__":
    asyncio.run(main())
