"""The tables come from the Alembic revisions: they build exactly what the models describe, adopt a
database made before migrations without losing a row, and run once when several workers start.

The test fixtures make their tables with `create_tables` (`metadata.create_all`, a little faster):
the first two tests here are what makes that equivalent to migrating.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import op
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, func, insert, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import models
from app.db.engine import create_engine, create_tables
from app.db.migrate import (
    INITIAL_REVISION,
    MigrationError,
    downgrade,
    head_revision,
    migration_transaction,
    prepare,
    schema_state,
    upgrade,
)
from app.db.seed import seed
from tests.conftest import SMALL_SEED, Databases


def model_differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, models.Base.metadata))


def described(conn: Connection) -> dict[str, Any]:
    """Every table as the database describes it (alembic_version left out): what autogenerate
    compares, plus the CHECK constraints it does not (enum values, non-negative totals)."""
    inspector = inspect(conn)
    tables: dict[str, Any] = {}
    for name in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
        tables[name] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                for c in inspector.get_columns(name)
            ],
            "primary key": inspector.get_pk_constraint(name)["constrained_columns"],
            "foreign keys": sorted(
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                    fk.get("options", {}).get("ondelete"),
                )
                for fk in inspector.get_foreign_keys(name)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(name)
            ),
            "unique": sorted(
                (u["name"], tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(name)
            ),
            "checks": sorted(
                (c["name"], " ".join(c["sqltext"].split()))
                for c in inspector.get_check_constraints(name)
            ),
        }
    return tables


async def run(engine: AsyncEngine, fn: Any) -> Any:
    async with engine.connect() as conn:
        return await conn.run_sync(fn)


# The tables a database made before migrations has (`metadata.create_all` of that time): those of
# the initial revision. Tables added by later revisions come with the upgrade.
LATER_TABLES = ("api_keys", "audit_events", "bulk_jobs")  # 0002, 0003
LEGACY_TABLES = [t for t in models.Base.metadata.sorted_tables if t.name not in LATER_TABLES]


async def create_legacy_tables(engine: AsyncEngine) -> None:
    """What the server did before migrations existed."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: models.Base.metadata.create_all(c, tables=LEGACY_TABLES))


async def row_counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {
            table.name: (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            for table in LEGACY_TABLES
        }


async def add_a_row_to_every_empty_table(engine: AsyncEngine) -> None:
    """The seed leaves photos and idempotency keys empty: an old database has those too."""
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            insert(models.Photo.__table__),
            [
                {"order_id": 1, "filename": "a.png", "content_type": "image/png", "size": 3}
                | {"sha256": "ab" * 32, "created_at": now}
            ],
        )
        await conn.execute(
            insert(models.IdempotencyKey.__table__),
            [
                {"key": "k1", "scope": "rest", "fingerprint": "f" * 64, "state": "done"}
                | {"status": 200, "response": "{}", "created_at": now, "locked_until": now}
                | {"expires_at": now + timedelta(days=1)}
            ],
        )


@pytest.fixture
async def fresh(databases: Databases) -> Any:
    engine = await databases.new()
    yield engine
    await engine.dispose()


async def test_the_revisions_build_what_the_models_describe(fresh: AsyncEngine, databases):
    made = await upgrade(fresh)
    assert (made.before, made.after, made.adopted) == (None, head_revision(), False)
    assert await run(fresh, model_differences) == []

    created = await databases.new()
    try:
        await create_tables(created)
        assert await run(fresh, described) == await run(created, described)
    finally:
        await created.dispose()


async def test_every_model_table_comes_from_the_revisions(fresh: AsyncEngine):
    await upgrade(fresh)
    tables = set(await run(fresh, lambda conn: inspect(conn).get_table_names()))
    assert tables == set(models.Base.metadata.tables) | {"alembic_version"}
    assert "idempotency_keys" in tables


async def test_an_old_database_is_upgraded_without_losing_rows(fresh: AsyncEngine, databases):
    await create_legacy_tables(fresh)
    await seed(fresh, SMALL_SEED)
    await add_a_row_to_every_empty_table(fresh)
    before = await row_counts(fresh)
    assert all(before.values()), before
    state = await schema_state(fresh)
    assert (state.current, state.legacy, state.at_head) == (None, True, False)

    made = await upgrade(fresh)

    assert (made.before, made.after, made.adopted) == (None, head_revision(), True)
    assert await row_counts(fresh) == before
    assert await run(fresh, model_differences) == []
    assert (await schema_state(fresh)).at_head
    # Once adopted, it is an ordinary database: the next upgrade has nothing to do.
    again = await upgrade(fresh)
    assert (again.before, again.after, again.adopted) == (head_revision(), head_revision(), False)
    assert await row_counts(fresh) == before


async def test_an_old_database_from_before_idempotency_keys_gets_that_table(fresh: AsyncEngine):
    await create_legacy_tables(fresh)
    await seed(fresh, SMALL_SEED)
    async with fresh.begin() as conn:
        await conn.execute(text("DROP TABLE idempotency_keys"))
    before = await row_counts_without(fresh, "idempotency_keys")

    made = await upgrade(fresh)

    assert made.adopted
    assert await run(fresh, model_differences) == []
    assert await row_counts_without(fresh, "idempotency_keys") == before


async def row_counts_without(engine: AsyncEngine, table: str) -> dict[str, int]:
    async with engine.connect() as conn:
        return {
            t.name: (await conn.execute(select(func.count()).select_from(t))).scalar_one()
            for t in LEGACY_TABLES
            if t.name != table
        }


async def test_downgrade_to_base_removes_every_table_and_upgrade_builds_them_again(
    fresh: AsyncEngine,
):
    await upgrade(fresh)
    gone = await downgrade(fresh, "base")
    assert (gone.before, gone.after) == (head_revision(), None)
    tables = set(await run(fresh, lambda conn: inspect(conn).get_table_names()))
    assert tables <= {"alembic_version"}
    await upgrade(fresh)
    assert await run(fresh, model_differences) == []


async def test_a_table_rebuilt_by_batch_mode_keeps_the_rows_that_point_at_it(
    fresh: AsyncEngine,
):
    """SQLite cannot ALTER a column: batch mode copies the table and drops the old one. With
    foreign keys on, that drop would cascade into every cake order; migrations run with them off
    and checked before commit."""
    await upgrade(fresh)
    await seed(fresh, SMALL_SEED)
    before = await row_counts(fresh)

    def add_a_column(conn: Connection) -> None:
        context = MigrationContext.configure(conn, opts={"render_as_batch": True})
        # Forced on SQLite (as an ALTER COLUMN would be); PostgreSQL alters in place.
        recreate = "always" if conn.dialect.name == "sqlite" else "auto"
        with (
            Operations.context(context),
            op.batch_alter_table("bakeries", recreate=recreate) as batch,
        ):
            batch.add_column(sa.Column("motto", sa.String(100), nullable=True))

    async with fresh.connect() as conn:
        await conn.run_sync(migration_transaction, add_a_column)

    assert await row_counts(fresh) == before
    columns = await run(
        fresh, lambda c: [col["name"] for col in inspect(c).get_columns("bakeries")]
    )
    assert "motto" in columns
    async with fresh.connect() as conn:  # foreign keys are on again for the pool's next user
        if conn.dialect.name == "sqlite":
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one() == 1


async def test_a_migration_on_sqlite_that_orphans_rows_is_rolled_back(tmp_path):
    """With foreign keys off, nothing stops a migration from orphaning rows but the check that
    runs before commit (PostgreSQL never turns its keys off)."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'orphans.db'}")
    try:
        await upgrade(engine)
        await seed(engine, SMALL_SEED)
        before = await row_counts(engine)

        def delete_a_bakery_behind_the_keys(conn: Connection) -> None:
            conn.execute(text("DELETE FROM bakeries WHERE id = 1"))

        async with engine.connect() as conn:
            with pytest.raises(MigrationError, match="foreign key points nowhere"):
                await conn.run_sync(migration_transaction, delete_a_bakery_behind_the_keys)
        assert await row_counts(engine) == before
    finally:
        await engine.dispose()


async def test_workers_starting_together_upgrade_once(databases: Databases):
    first = await databases.new()
    # A second engine on the same database, as a second worker process has.
    second = await same_database(databases, first)
    try:
        results = await asyncio.gather(upgrade(first), upgrade(second))
        assert sorted(r.before or "" for r in results) == ["", head_revision()]
        assert all(r.after == head_revision() for r in results)
        assert await run(first, model_differences) == []
    finally:
        await first.dispose()
        await second.dispose()


async def same_database(databases: Databases, engine: AsyncEngine) -> AsyncEngine:
    from tests.conftest import create_engine_in_schema

    if databases.backend == "sqlite":
        return create_engine(engine.url.render_as_string(hide_password=False))
    return create_engine_in_schema(databases.schemas[-1])


async def test_a_database_behind_is_refused_when_migrating_at_start_is_off(fresh: AsyncEngine):
    await create_legacy_tables(fresh)
    with pytest.raises(MigrationError) as refused:
        await prepare(fresh, migrate=False)
    message = str(refused.value)
    assert "batchery migrate" in message and "BATCHERY_MIGRATE_ON_START" in message
    assert "made before migrations" in message
    assert (await schema_state(fresh)).current is None  # nothing was changed

    made = await prepare(fresh, migrate=True)
    assert made is not None and made.adopted
    assert await prepare(fresh, migrate=False) is None  # at head: nothing to say


async def test_a_database_migrated_by_a_newer_version_is_refused(fresh: AsyncEngine):
    await upgrade(fresh)
    async with fresh.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    state = await schema_state(fresh)
    assert (state.known, state.at_head) == (False, False)
    for migrate in (True, False):
        with pytest.raises(MigrationError, match="9999, which this Batchery does not have"):
            await prepare(fresh, migrate=migrate)


def test_the_initial_revision_is_the_only_root():
    assert INITIAL_REVISION == "0001"
    assert head_revision()
