"""`batchery migrate`: bring the database's tables to what this code needs (app/db/migrate.py),
show where it stands, or write a new revision. Also the start-up step of `batchery serve`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

from app.settings import Settings

if TYPE_CHECKING:  # imported when used: Alembic would slow every command's start
    from app.db.migrate import Upgrade

DESCRIPTION = (
    "Upgrades the database to the newest revision of app/db/migrations (a database made before "
    "migrations existed is adopted first, rows untouched). `batchery serve` does the same when it "
    "starts unless BATCHERY_MIGRATE_ON_START=false."
)


def add_parser(commands: Any, epilog: str) -> None:
    migrate = commands.add_parser(
        "migrate",
        help="upgrade the database's tables to this version (Alembic revisions)",
        description=DESCRIPTION,
        epilog=epilog,
    )
    action = migrate.add_mutually_exclusive_group()
    action.add_argument(
        "--status",
        action="store_true",
        help="say which revision the database is at; exit status 1 when it is behind",
    )
    action.add_argument(
        "--downgrade", metavar="REVISION", help="go back to REVISION ('base': no tables)"
    )
    action.add_argument(
        "--autogenerate",
        action="store_true",
        help="write a new revision from the difference between the models and the revisions "
        "(needs -m; read the file before committing it)",
    )
    migrate.add_argument("-m", "--message", help="the new revision's title (with --autogenerate)")


def run(settings: Settings, args: argparse.Namespace) -> int:
    from app.db.migrate import MigrationError, autogenerate

    if args.autogenerate:
        if not args.message:
            print("migrate: --autogenerate needs -m MESSAGE, the revision's title", file=sys.stderr)
            return 2
        path = autogenerate(args.message)
        print(f"migrate: wrote {path}; read it, then run `batchery migrate`", file=sys.stderr)
        return 0
    try:
        return asyncio.run(_run(settings, args))
    except MigrationError as error:
        print(f"migrate: {error}", file=sys.stderr)
        return 2


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    from app.db.engine import create_engine
    from app.db.migrate import downgrade, schema_state, upgrade

    where = database_label(settings)
    engine = create_engine(settings.resolved_database_url)
    try:
        if args.status:
            state = await schema_state(engine)
            behind = "" if state.at_head else f", behind: this version needs {state.head}"
            print(f"migrate: {where} has {state.describe()}{behind}", file=sys.stderr)
            return 0 if state.at_head else 1
        if args.downgrade:
            done = await downgrade(engine, args.downgrade)
            print(
                f"migrate: {where} downgraded from {done.before} to {done.after or 'no tables'}",
                file=sys.stderr,
            )
            return 0
        done = await upgrade(engine)
        print(f"migrate: {where} {describe(done)}", file=sys.stderr)
        return 0
    finally:
        await engine.dispose()


def prepare_for_serving(settings: Settings) -> str | None:
    """Run before uvicorn starts its workers: upgrade (BATCHERY_MIGRATE_ON_START, the default) or
    check the database once, so workers never race and a refusal is one line. Returns the
    refusal, or None when the database is ready."""
    from app.db.engine import create_engine
    from app.db.migrate import MigrationError, prepare

    async def check() -> None:
        engine = create_engine(settings.resolved_database_url)
        try:
            done = await prepare(engine, migrate=settings.migrate_on_start)
        finally:
            await engine.dispose()
        if done is not None:
            print(f"Batchery: {database_label(settings)} {describe(done)}", file=sys.stderr)

    try:
        asyncio.run(check())
    except MigrationError as error:
        return f"{database_label(settings)}: {error}"
    return None


def describe(done: Upgrade) -> str:
    from app.db.migrate import INITIAL_REVISION

    if done.adopted:
        return (
            f"had tables made before migrations: adopted at {INITIAL_REVISION} (no row touched), "
            f"upgraded to {done.after}"
        )
    if done.before == done.after:
        return f"is at {done.after}, the newest revision"
    return f"upgraded from {done.before or 'no tables'} to {done.after}"


def database_label(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)
