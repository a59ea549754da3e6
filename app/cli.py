"""batchery: serve the API, migrate the database, seed demo data, print the schema, import records
from a file, manage API keys, and be a client of a running server's bulk jobs."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from app import cli_jobs, cli_keys, cli_migrate, cli_worker
from app.settings import Settings, SettingsError, hide_password

WHERE = (
    "Settings come from BATCHERY_* environment variables (README: Configuration). The database is "
    "BATCHERY_DATABASE_URL when set, else the SQLite file batchery.db in BATCHERY_DATA_DIR "
    "(default: data, relative to the current directory)."
)
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from app.cli_import import ImportJob

# Written out rather than read from app.bulk.entities, which would slow every command's start;
# tests/app/test_cli.py checks they match.
IMPORT_FIELDS = {
    "bakeries": "name, region, externalId",
    "cake-orders": "bakeryId, writtenPhrase, currentTotal, status, externalId",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="batchery",
        description=__doc__,
        epilog=f"{WHERE} 'batchery COMMAND --help' describes a command.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="serve the API with uvicorn",
        description="Serves /graphql, /api, /metrics.",
        epilog=WHERE,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes (default: %(default)s)"
    )
    serve.add_argument(
        "--reload", action="store_true", help="restart on code changes (development)"
    )

    cli_migrate.add_parser(commands, WHERE)

    seed = commands.add_parser(
        "seed",
        help="upgrade the tables and fill them with demo data",
        description="Upgrades the tables (as `batchery migrate`) and fills them with "
        "deterministic demo data. A database that already has data is left alone: exit status "
        "1, unless --reset or --if-empty.",
        epilog=WHERE,
    )
    seed.add_argument(
        "--bakeries", type=int, default=50, metavar="N", help="bakeries (default: %(default)s)"
    )
    seed.add_argument(
        "--orders-per-bakery",
        type=int,
        default=200,
        metavar="N",
        help="cake orders per bakery (default: %(default)s)",
    )
    seed.add_argument(
        "--suppliers", type=int, default=12, metavar="N", help="suppliers (default: %(default)s)"
    )
    seed.add_argument("--reset", action="store_true", help="delete every row first")
    seed.add_argument(
        "--if-empty", action="store_true", help="do nothing (exit status 0) when data is present"
    )

    commands.add_parser("schema", help="print the GraphQL schema (SDL)")
    cli_keys.add_parser(commands, WHERE)
    cli_jobs.add_parser(commands, "")
    cli_worker.add_parser(commands, WHERE)

    fields = "\n".join(f"  {entity + ':':13} {names}" for entity, names in IMPORT_FIELDS.items())
    imports = commands.add_parser(
        "import",
        help="create records from a CSV or JSON Lines file through the bulk engine",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "Creates one record per CSV row / JSON line, in chunks sized to take about "
            "--target-ms each. Rows that fail are written, with their line numbers, to the report "
            "file. Exit status: 0 all imported, 1 some rows failed, 2 the file could not be used."
        ),
        epilog=f"fields (CSV header row / JSON keys):\n{fields}\n\n{textwrap.fill(WHERE)}",
    )
    imports.add_argument(
        "file",
        type=Path,
        help="a .csv file (a header row of field names, then a record per row; an empty cell "
        "leaves the field out) or a .jsonl file (a JSON object per line)",
    )
    imports.add_argument("--entity", required=True, choices=list(IMPORT_FIELDS))
    imports.add_argument(
        "--atomic", action="store_true", help="import every row or none (one transaction)"
    )
    imports.add_argument(
        "--report",
        type=Path,
        metavar="PATH",
        help="where failed rows go (default: FILE.errors.jsonl)",
    )
    imports.add_argument(
        "--format", choices=["csv", "jsonl"], help="default: from the file name's suffix"
    )
    imports.add_argument(
        "--target-ms",
        type=int,
        default=250,
        metavar="MS",
        help="wanted time per chunk, in milliseconds (default: %(default)s)",
    )
    imports.add_argument(
        "--min-chunk",
        type=int,
        default=10,
        metavar="N",
        help="smallest chunk, and the first one (default: %(default)s)",
    )
    imports.add_argument(
        "--max-chunk",
        type=int,
        metavar="N",
        help="largest chunk (default and upper bound: BATCHERY_MAX_RECORDS_PER_BATCH, 200)",
    )
    imports.add_argument("--no-progress", action="store_true", help="no progress bar")
    imports.add_argument(
        "--create",
        action="store_true",
        help="create the tables if the database has none (without it, an empty database is "
        "refused: it is usually the wrong one)",
    )

    args = parser.parse_args(argv)
    if args.command == "jobs":  # a client of a server: this machine's settings do not matter
        return cli_jobs.run(args)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"batchery: {error}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(settings, args)
    if args.command == "migrate":
        return cli_migrate.run(settings, args)
    if args.command == "seed":
        return asyncio.run(_seed(settings, args))
    if args.command == "import":
        return asyncio.run(_import(settings, args))
    if args.command == "keys":
        return asyncio.run(cli_keys.run(settings, args))
    if args.command == "worker":
        return cli_worker.run(settings, args)
    from schema import schema

    try:
        print(schema.as_str(), flush=True)
    except BrokenPipeError:
        # `batchery schema | head`: the reader left early. Point stdout at /dev/null so that
        # Python's flush at exit does not print a traceback (the recipe of the signal docs).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


def database_in_use(settings: Settings) -> str:
    """Which database a command uses and where that choice came from, for one line on stderr:
    a relative BATCHERY_DATA_DIR is the trap of a command run from another directory."""
    if settings.database_url:
        return f"{hide_password(settings.database_url)} (BATCHERY_DATABASE_URL)"
    where = f"batchery.db in BATCHERY_DATA_DIR={settings.data_dir}"
    if not settings.data_dir.is_absolute():
        where += f", relative to the current directory {Path.cwd()}"
    return f"{settings.resolved_database_url} ({where})"


def announce_database(command: str, settings: Settings) -> None:
    print(f"{command}: database {database_in_use(settings)}", file=sys.stderr)


def _shown_url(settings: Settings) -> str:
    return hide_password(settings.resolved_database_url)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import signal

    import uvicorn

    from app.db.migrate import MigrationError
    from app.db.reachable import DatabaseUnreachable, open_checked
    from app.http.jwt_auth import JwtConfig
    from app.logs import access_log, log_config

    try:
        # Checked here too: the app is built by uvicorn, where a refusal would be a traceback.
        JwtConfig.from_settings(settings)
    except SettingsError as error:
        print(f"batchery: {error}", file=sys.stderr)
        return 2
    announce_database("serve", settings)

    async def check() -> None:
        engine = await open_checked(settings.resolved_database_url, _shown_url(settings))
        try:
            await cli_migrate.prepare_for_serving(engine, settings)
        finally:
            await engine.dispose()

    try:
        asyncio.run(check())
    except DatabaseUnreachable as error:
        print(f"serve: {error}", file=sys.stderr)
        return 1
    except MigrationError as error:
        print(f"serve: {error}", file=sys.stderr)
        return 2
    # uvicorn drains on SIGTERM, then raises the signal again with the handler it found: with
    # this one the process ends with status 0 (a drained stop is a clean exit), not killed by it.
    signal.signal(signal.SIGTERM, lambda *_: None)
    print(
        f"Batchery: GraphiQL and the API at http://{args.host}:{args.port}/graphql", file=sys.stderr
    )
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        reload=args.reload,
        log_level=settings.log_level,
        log_config=log_config(settings.log_level),
        access_log=access_log(settings.log_level),
        # httptools with the request head bounded (BATCHERY_MAX_REQUEST_HEAD_BYTES): uvicorn's
        # own sets no limit (app.http.protocol.py).
        http="app.http.protocol:BoundedHttpToolsProtocol",
        # SIGTERM: stop accepting, let the requests in flight finish for this long, then exit.
        timeout_graceful_shutdown=settings.shutdown_grace_seconds or None,
    )
    return 0


async def _seed(settings: Settings, args: argparse.Namespace) -> int:
    from app.db.migrate import MigrationError, upgrade
    from app.db.reachable import DatabaseUnreachable, open_checked
    from app.db.seed import SeedSize, is_empty, reset, seed

    announce_database("seed", settings)
    try:
        engine = await open_checked(settings.resolved_database_url, _shown_url(settings))
    except DatabaseUnreachable as error:
        print(f"seed: {error}", file=sys.stderr)
        return 1
    try:
        try:
            await upgrade(engine)
        except MigrationError as error:
            print(f"seed: {error}", file=sys.stderr)
            return 2
        if args.reset:
            await reset(engine)
        elif not await is_empty(engine):
            if args.if_empty:
                print("seed: data already present, nothing to do", file=sys.stderr)
                return 0
            print("seed: the database has data; pass --reset to replace it", file=sys.stderr)
            return 1
        size = SeedSize(args.bakeries, args.orders_per_bakery, args.suppliers)
        counts = await seed(engine, size)
        print("seed: " + ", ".join(f"{n} {table}" for table, n in counts.items()), file=sys.stderr)
        return 0
    finally:
        await engine.dispose()


async def _import(settings: Settings, args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from app.bulk.chunking import AdaptiveChunker
    from app.bulk.importing import ImportRefused
    from app.cli_import import ImportJob, SourceError, count_rows, entity_named, run_import
    from app.db.migrate import MigrationError
    from app.db.reachable import DatabaseUnreachable, open_checked

    announce_database("import", settings)
    job = ImportJob(
        path=args.file,
        entity=entity_named(args.entity),
        atomic=args.atomic,
        report=args.report,
        file_format=args.format,
        target_seconds=args.target_ms / 1000,
        min_chunk=args.min_chunk,
        max_chunk=args.max_chunk,
    )
    try:
        total = count_rows(job)
    except (SourceError, UnicodeDecodeError) as error:
        print(f"import: {error}", file=sys.stderr)
        return 2
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("chunk {task.fields[chunk]}"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=args.no_progress,
    )
    task = bar.add_task(f"import {job.path.name}", total=total, chunk="-")

    def progress(chunker: AdaptiveChunker) -> Callable[[int, int], None]:
        return lambda done, total: bar.update(task, completed=done, total=total, chunk=chunker.size)

    if not args.create and _sqlite_file_missing(settings.resolved_database_url):
        # Connecting would create the file: refuse before leaving an empty database behind.
        print(f"import: {_not_created(settings)}", file=sys.stderr)
        return 2
    try:
        engine = await open_checked(settings.resolved_database_url, _shown_url(settings))
    except DatabaseUnreachable as error:
        print(f"import: {error}", file=sys.stderr)
        return 1
    try:
        refusal = await _unprepared(engine, settings, job, create=args.create)
        if refusal:
            print(f"import: {refusal}", file=sys.stderr)
            return 2
        with bar:
            result = await run_import(engine, settings, job, total=total, progress=progress)
    except (ImportRefused, MigrationError, ValueError) as error:
        print(f"import: {error}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()
    failed = len(result.failures)
    if not result.committed:
        print(
            f"import: nothing imported (--atomic): {failed} of {result.total} rows failed; "
            f"see {job.report_path}",
            file=sys.stderr,
        )
        return 1
    summary = f"import: {result.written} of {result.total} rows written"
    if failed:
        summary += f", {failed} failed; see {job.report_path}"
    print(summary, file=sys.stderr)
    return 1 if failed else 0


async def _unprepared(
    engine: AsyncEngine, settings: Settings, job: ImportJob, *, create: bool
) -> str | None:
    """Why importing into this database would only fail every row, or None. An empty database is
    almost always the wrong one (a relative BATCHERY_DATA_DIR from another directory)."""
    from sqlalchemy import func, select

    from app.db.migrate import prepare, schema_state, upgrade
    from app.db.models import Bakery

    state = await schema_state(engine)
    if state.current is None and not state.legacy:  # none of the application's tables
        if not create:
            return _not_created(settings)
        await upgrade(engine)
    else:
        await prepare(engine, migrate=settings.migrate_on_start)
    if job.entity.name == "cake-orders":
        async with engine.connect() as conn:
            bakeries = (await conn.execute(select(func.count()).select_from(Bakery))).scalar_one()
        if not bakeries:
            return (
                f"the database {_shown_url(settings)} has no bakeries, so every cake order would "
                "be refused: import bakeries first, run 'batchery seed', or point "
                "BATCHERY_DATABASE_URL / BATCHERY_DATA_DIR at the database you meant"
            )
    return None


def _not_created(settings: Settings) -> str:
    return (
        f"the database {_shown_url(settings)} has not been created: run 'batchery seed' for demo "
        "data, pass --create to create empty tables, or point BATCHERY_DATABASE_URL / "
        "BATCHERY_DATA_DIR at the database you meant"
    )


def _sqlite_file_missing(url: str) -> bool:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return False
    return not Path(parsed.database).exists()


if __name__ == "__main__":
    raise SystemExit(main())
