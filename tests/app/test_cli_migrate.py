"""`batchery migrate`, and what `batchery serve` and the app do with a database that is behind."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Column, Integer, String, Table

from app.cli import main
from app.db.migrate import head_revision
from app.db.models import Base
from app.main import create_app
from app.settings import Settings
from tests.helpers import without_cost


def revision_of(db: Path) -> str | None:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


def make_old_database(db: Path, bakeries: int = 3) -> None:
    """A database as Batchery made it before migrations: create_all (of the tables there were
    then: those of the initial revision), then rows."""
    script = (
        "import asyncio, sys\n"
        "from app.db.engine import create_engine\n"
        "from app.db.seed import SeedSize, seed\n"
        "from tests.db.test_migrations import create_legacy_tables\n"
        "async def main():\n"
        "    engine = create_engine(f'sqlite+aiosqlite:///{sys.argv[1]}')\n"
        "    await create_legacy_tables(engine)\n"
        "    await seed(engine, SeedSize(bakeries=int(sys.argv[2]), orders_per_bakery=4))\n"
        "    await engine.dispose()\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", script, str(db), str(bakeries)], check=True, timeout=60)


def test_migrate_brings_a_new_database_to_head_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BATCHERY_DATA_DIR", str(tmp_path))
    db = tmp_path / "batchery.db"
    assert main(["migrate", "--status"]) == 1
    assert "no tables yet, behind" in capsys.readouterr().err

    assert main(["migrate"]) == 0
    err = capsys.readouterr().err
    assert (
        f"sqlite+aiosqlite:///{db}" in err
        and f"upgraded from no tables to {head_revision()}" in err
    )
    assert revision_of(db) == head_revision()

    assert main(["migrate"]) == 0
    assert "the newest revision" in capsys.readouterr().err
    assert main(["migrate", "--status"]) == 0


def test_migrate_adopts_an_old_database_and_keeps_its_rows(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BATCHERY_DATA_DIR", str(tmp_path))
    db = tmp_path / "batchery.db"
    make_old_database(db, bakeries=3)

    assert main(["migrate", "--status"]) == 1
    assert "tables made before migrations" in capsys.readouterr().err
    assert main(["migrate"]) == 0
    assert "adopted at 0001 (no row touched)" in capsys.readouterr().err
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM cake_orders").fetchone()[0] == 12
    assert revision_of(db) == head_revision()


def test_migrate_downgrade_to_base_leaves_no_tables(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BATCHERY_DATA_DIR", str(tmp_path))
    assert main(["migrate"]) == 0
    assert main(["migrate", "--downgrade", "base"]) == 2
    assert "add --yes to go ahead" in capsys.readouterr().err
    assert revision_of(tmp_path / "batchery.db") == head_revision()
    assert main(["migrate", "--downgrade", "base", "--yes"]) == 0
    assert "to no tables" in capsys.readouterr().err
    with sqlite3.connect(tmp_path / "batchery.db") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert tables & set(Base.metadata.tables) == set()


def test_seed_makes_its_tables_through_the_migrations(tmp_path, monkeypatch):
    monkeypatch.setenv("BATCHERY_DATA_DIR", str(tmp_path))
    assert main(["seed", "--bakeries", "2", "--orders-per-bakery", "1"]) == 0
    assert revision_of(tmp_path / "batchery.db") == head_revision()


def test_serve_refuses_a_database_behind_when_told_not_to_migrate(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BATCHERY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BATCHERY_MIGRATE_ON_START", "false")
    make_old_database(tmp_path / "batchery.db")
    # Refused before uvicorn is imported or a port is bound: one line, exit status 2.
    assert main(["serve", "--port", "1"]) == 2
    announced, refusal = capsys.readouterr().err.strip().splitlines()
    assert announced.startswith("serve: database sqlite+aiosqlite:///")
    assert refusal.startswith("serve: the database has tables made before migrations")
    err = refusal
    assert "run `batchery migrate`" in err and "BATCHERY_MIGRATE_ON_START=true" in err
    assert not (tmp_path / "batchery.db-journal").exists()
    with sqlite3.connect(tmp_path / "batchery.db") as conn:
        assert not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'"
        ).fetchone()


async def test_the_app_upgrades_its_database_when_it_starts(tmp_path):
    settings = Settings(data_dir=tmp_path)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.post("/graphql", json={"query": "{ bakeries { id } }"})
    assert without_cost(answer.json()) == {"data": {"bakeries": []}}
    assert revision_of(tmp_path / "batchery.db") == head_revision()


async def test_the_app_refuses_to_start_on_a_database_behind_when_told_not_to_migrate(tmp_path):
    from app.db.migrate import MigrationError

    app = create_app(Settings(data_dir=tmp_path, migrate_on_start=False))
    with pytest.raises(MigrationError, match="run `batchery migrate`"):
        async with app.router.lifespan_context(app):
            pass


def test_autogenerate_writes_the_next_numbered_revision_for_a_new_table(tmp_path, capsys):
    from app.db.migrate import autogenerate

    jobs = Table(
        "jobs_for_test",
        Base.metadata,
        Column("id", Integer, primary_key=True),
        Column("state", String(16), nullable=False, index=True),
    )
    try:
        path = autogenerate("add jobs", directory=tmp_path)
    finally:
        Base.metadata.remove(jobs)
    number = f"{int(head_revision()) + 1:04d}"
    assert path.parent == tmp_path and path.name == f"{number}_add_jobs.py"
    text = path.read_text()
    assert f'revision = "{number}"' in text and f'down_revision = "{head_revision()}"' in text
    assert 'op.create_table(\n        "jobs_for_test"' in text
    assert "ix_jobs_for_test_state" in text
    compile(text, str(path), "exec")


def test_autogenerate_needs_a_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BATCHERY_DATA_DIR", str(tmp_path))
    assert main(["migrate", "--autogenerate"]) == 2
    assert "needs -m MESSAGE" in capsys.readouterr().err


def test_status_and_migrate_refuse_a_database_from_a_newer_version(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BATCHERY_DATA_DIR", str(tmp_path))
    assert main(["migrate"]) == 0
    with sqlite3.connect(tmp_path / "batchery.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    capsys.readouterr()
    assert main(["migrate", "--status"]) == 1
    assert "revision 9999, unknown to this version" in capsys.readouterr().err
    assert main(["migrate"]) == 2
    assert "9999, which this Batchery does not have" in capsys.readouterr().err
    assert revision_of(tmp_path / "batchery.db") == "9999"
