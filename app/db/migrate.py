"""Schema migrations: the tables come from the Alembic revisions in `app/db/migrations/`.

Alembic is configured here in code (no alembic.ini, nothing read from the working directory) and
always runs on a connection this module opened: one transaction per upgrade, taken with the
database's write lock (SQLite `BEGIN IMMEDIATE`, a PostgreSQL advisory lock on the schema), so
several workers starting at once upgrade the database once and the others find it at head.

A database made before migrations existed (by `metadata.create_all`, with no `alembic_version`
table) is *adopted*: the tables of the initial revision it lacks are created as that revision
creates them, it is stamped at the initial revision, then upgraded like any other. No row moves.

On SQLite, foreign keys are switched off while migrating (a batch-mode ALTER copies the table and
drops the old one; with foreign keys on, that drop would cascade into the children's rows) and
checked before commit, the procedure SQLite's documentation gives for altering tables.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
INITIAL_REVISION = "0001"
MIGRATE_COMMAND = "batchery migrate"
SETTING = "BATCHERY_MIGRATE_ON_START"

T = TypeVar("T")


class MigrationError(RuntimeError):
    """The database's schema cannot be brought to what this code needs; the message says why
    and what to run."""


@dataclass(frozen=True, slots=True)
class SchemaState:
    current: str | None  # the revision in alembic_version; None: none recorded
    head: str  # the newest revision this code has
    legacy: bool  # tables made before migrations (no alembic_version): adopted on upgrade
    known: bool  # False: a revision this code does not have (a newer Batchery migrated it)

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    def describe(self) -> str:
        if self.legacy:
            return "tables made before migrations (no alembic_version table)"
        if self.current is None:
            return "no tables yet"
        return f"revision {self.current}"


@dataclass(frozen=True, slots=True)
class Upgrade:
    before: str | None
    after: str | None
    adopted: bool  # a database made before migrations, stamped at INITIAL_REVISION first


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    # Numbered revisions: `0002_add_jobs.py` sorts and reads better than a random hex id.
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    return config


def head_revision() -> str:
    return _head(ScriptDirectory.from_config(alembic_config()))


async def schema_state(engine: AsyncEngine) -> SchemaState:
    async with engine.connect() as conn:
        return await conn.run_sync(_state)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> Upgrade:
    """Bring the database to `revision` (default: the newest), adopting a database made before
    migrations first."""
    async with engine.connect() as conn:
        return await conn.run_sync(migration_transaction, lambda c: _upgrade(c, revision))


async def downgrade(engine: AsyncEngine, revision: str) -> Upgrade:
    async with engine.connect() as conn:
        return await conn.run_sync(migration_transaction, lambda c: _downgrade(c, revision))


async def prepare(engine: AsyncEngine, *, migrate: bool) -> Upgrade | None:
    """At start: a database behind the code is upgraded (`migrate`) or refused with a message
    naming `batchery migrate`; a database ahead of the code is always refused."""
    state = await schema_state(engine)
    if state.at_head:
        return None
    if not state.known:
        raise MigrationError(_unknown(state.current))
    if not migrate:
        raise MigrationError(
            f"the database has {state.describe()}; this Batchery needs revision {state.head}: "
            f"run `{MIGRATE_COMMAND}` (or set {SETTING}=true to upgrade when the server starts)"
        )
    return await upgrade(engine)


def autogenerate(message: str, directory: Path | None = None) -> Path:
    """Write a new revision: the models compared with a scratch SQLite database upgraded to
    head, so what is found is exactly what the revisions lack. Read it before committing."""
    from app.db.engine import create_engine

    async def run(url: str) -> Path:
        engine = create_engine(url)
        try:
            await upgrade(engine)
            async with engine.connect() as conn:
                write = lambda c: _revision(c, message, directory)  # noqa: E731
                return await conn.run_sync(migration_transaction, write)
        finally:
            await engine.dispose()

    with tempfile.TemporaryDirectory(prefix="batchery-autogenerate-") as scratch:
        path = asyncio.run(run(f"sqlite+aiosqlite:///{scratch}/head.db"))
    ruff = Path(sys.executable).parent / "ruff"
    if ruff.exists():  # the project's style; absent outside a development install
        subprocess.run([str(ruff), "check", "--fix", "--quiet", str(path)], check=False)
        subprocess.run([str(ruff), "format", "--quiet", str(path)], check=False)
    return path


def migration_transaction(conn: Connection, work: Callable[[Connection], T]) -> T:
    """Run `work` as every migration runs: in one transaction holding the database's write lock,
    on SQLite with foreign keys off until it commits (`await conn.run_sync(...)` on a connection
    without a transaction)."""
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        _pragma(conn, "foreign_keys=OFF")  # only outside a transaction
    try:
        with conn.execution_options(sqlite_begin="IMMEDIATE").begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(current_schema()))"))
            result = work(conn)
            if sqlite:
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise MigrationError(
                        f"the migration left {len(broken)} rows whose foreign key points "
                        f"nowhere (first: {tuple(broken[0])}); nothing was changed"
                    )
        return result
    finally:
        if sqlite:
            try:
                _pragma(conn, "foreign_keys=ON")
            except Exception:
                conn.invalidate()  # never hand a connection without foreign keys back to the pool
                raise


def _pragma(conn: Connection, pragma: str) -> None:
    # Through the driver's cursor: a SQLAlchemy statement would begin a transaction first, and
    # SQLite ignores this pragma inside one.
    cursor = conn.connection.cursor()
    try:
        cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


def _config_on(conn: Connection) -> Config:
    config = alembic_config()
    config.attributes["connection"] = conn
    return config


def _head(script: ScriptDirectory) -> str:
    heads = script.get_heads()
    if len(heads) != 1:
        raise MigrationError(
            f"the revisions have {len(heads)} heads ({', '.join(sorted(heads))}): two branches "
            "each added one; renumber the newer so that it follows the other"
        )
    return heads[0]


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _initial_tables(script: ScriptDirectory) -> dict[str, Callable[[], None]]:
    initial = script.get_revision(INITIAL_REVISION)
    assert initial is not None and initial.module is not None
    tables: dict[str, Callable[[], None]] = initial.module.TABLES
    return tables


def _state(conn: Connection) -> SchemaState:
    script = ScriptDirectory.from_config(alembic_config())
    current = _current(conn)
    legacy = current is None and _has_legacy_tables(conn, script)
    known = True
    if current is not None:
        try:
            known = script.get_revision(current) is not None
        except CommandError:
            known = False
    return SchemaState(current=current, head=_head(script), legacy=legacy, known=known)


def _has_legacy_tables(conn: Connection, script: ScriptDirectory) -> bool:
    present = set(inspect(conn).get_table_names())
    return bool(present & set(_initial_tables(script)))


def _upgrade(conn: Connection, revision: str) -> Upgrade:
    # Read again under the lock: another worker may have upgraded while this one waited.
    state = _state(conn)
    if not state.known:
        raise MigrationError(_unknown(state.current))
    if state.legacy:
        _adopt(conn)
    try:
        command.upgrade(_config_on(conn), revision)
    except CommandError as error:
        raise MigrationError(f"cannot upgrade to {revision!r}: {error}") from error
    return Upgrade(before=state.current, after=_current(conn), adopted=state.legacy)


def _downgrade(conn: Connection, revision: str) -> Upgrade:
    before = _current(conn)
    try:
        command.downgrade(_config_on(conn), revision)
    except CommandError as error:
        raise MigrationError(f"cannot downgrade to {revision!r}: {error}") from error
    return Upgrade(before=before, after=_current(conn), adopted=False)


def _adopt(conn: Connection) -> None:
    """Stamp a database made by `create_all` at the initial revision, first creating the tables
    of that revision it lacks (databases made before idempotency keys have no such table)."""
    script = ScriptDirectory.from_config(alembic_config())
    present = set(inspect(conn).get_table_names())
    context = MigrationContext.configure(conn)
    with Operations.context(context):
        for name, create in _initial_tables(script).items():
            if name not in present:
                create()
    context.stamp(script, INITIAL_REVISION)


def _revision(conn: Connection, message: str, directory: Path | None) -> Path:
    config = _config_on(conn)
    head = _head(ScriptDirectory.from_config(config))
    options: dict[str, Any] = {"rev_id": f"{int(head) + 1:04d}" if head.isdigit() else None}
    if directory is not None:  # elsewhere than the package's versions/ (tests)
        locations = os.pathsep.join([str(MIGRATIONS_DIR / "versions"), str(directory)])
        config.set_main_option("version_locations", locations)
        options["version_path"] = str(directory)
    script = command.revision(config, message=message, autogenerate=True, **options)
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


def _unknown(revision: str | None) -> str:
    return (
        f"the database is at revision {revision}, which this Batchery does not have (a newer "
        "version migrated it): run the newer version, or downgrade the database with it first"
    )
