"""`batchery migrate`: bring the database's tables to what this code needs (app/db/migrate.py),
show where it stands, or write a new revision. Also the start-up step of `batchery serve`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

from app.settings import Settings, hide_password

if TYPE_CHECKING:  # imported when used: Alembic would slow every command's start
    from sqlalchemy.ext.asyncio import AsyncEngine

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
        "--downgrade",
        metavar="REVISION",
        help="go back to REVISION ('base': no tables), dropping what later revisions added "
        "(needs --yes)",
    )
    action.add_argument(
        "--autogenerate",
        action="store_true",
        help="write a new revision from the difference between the models and the revisions "
        "(needs -m; read the file before committing it)",
    )
    migrate.add_argument("-m", "--message", help="the new revision's title (with --autogenerate)")
    migrate.add_argument(
        "--yes", action="store_true", help="with --downgrade: yes, drop what it drops"
    )


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
    from app.db.migrate import downgrade, schema_state, upgrade
    from app.db.reachable import DatabaseUnreachable, open_checked

    where = database_label(settings)
    try:
        engine = await open_checked(settings.resolved_database_url, where)
    except DatabaseUnreachable as error:
        print(f"migrate: {error}", file=sys.stderr)
        return 1
    try:
        if args.status:
            state = await schema_state(engine)
            if not state.known:
                where_it_stands = f", unknown to this version (newest: {state.head}): a newer one"
            elif not state.at_head:
                where_it_stands = f", behind: this version needs {state.head}"
            else:
                where_it_stands = ""
            print(f"migrate: {where} has {state.describe()}{where_it_stands}", file=sys.stderr)
            return 0 if state.at_head else 1
        if args.downgrade:
            if not args.yes:
                print(
                    "migrate: a downgrade drops what the later revisions added, rows included "
                    "('base': every table and all data); add --yes to go ahead",
                    file=sys.stderr,
                )
                return 2
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


async def prepare_for_serving(engine: AsyncEngine, settings: Settings) -> None:
    """Run before uvicorn starts its workers: upgrade (BATCHERY_MIGRATE_ON_START, the default) or
    check the database once, so workers never race and a refusal is one line (MigrationError)."""
    from app.db.migrate import prepare

    done = await prepare(engine, migrate=settings.migrate_on_start)
    if done is not None:
        print(f"Batchery: {database_label(settings)} {describe(done)}", file=sys.stderr)


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
    return hide_password(settings.resolved_database_url)
