"""`batchery worker`: a process that runs bulk jobs from the shared queue (BATCHERY_JOBS_BROKER).

Start as many as the database takes, on any machine that sees the same database, Redis and
BATCHERY_JOBS_DIR. Each takes up to BATCHERY_JOBS_WORKER_CONCURRENCY jobs at once from the queue
and resumes jobs whose worker died (their lease ran out). SIGTERM or Ctrl-C: no new job is taken,
the running ones stop between two statements and are handed back (another worker resumes them
from their last committed chunk); the exit status is then 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

from app.settings import Settings

# Printed (stderr) once the worker takes jobs: scripts and tests wait for it.
READY = "worker: ready"


def add_parser(commands: Any, epilog: str) -> None:
    commands.add_parser(
        "worker",
        help="run bulk jobs from the shared queue (needs BATCHERY_JOBS_BROKER=redis://...)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        epilog=epilog,
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.jobs_broker:
        print(
            "worker: BATCHERY_JOBS_BROKER is empty, so jobs run inside the API process "
            "(`batchery serve`) and there is nothing for a worker to take. Set it to the Redis "
            "the API processes use, e.g. BATCHERY_JOBS_BROKER=redis://127.0.0.1:6379/0",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(
        level=logging.DEBUG if settings.log_level == "trace" else settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return asyncio.run(_work(settings))


async def _work(settings: Settings) -> int:
    from app import cli_migrate
    from app.bulk.jobs.broker import QueueUnavailable
    from app.bulk.jobs.worker import serve
    from app.db.migrate import MigrationError
    from app.db.reachable import DatabaseUnreachable, open_checked
    from app.db.transactions import set_write_timeout
    from app.jobs_settings import jobs_config, jobs_executor, make_bus

    shown = cli_migrate.database_label(settings)
    print(f"worker: database {shown}", file=sys.stderr)
    try:
        engine = await open_checked(settings.resolved_database_url, shown)
    except DatabaseUnreachable as error:
        print(f"worker: {error}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    config = jobs_config(settings)
    bus = make_bus(config)
    try:
        await cli_migrate.prepare_for_serving(engine, settings)
        set_write_timeout(engine, settings.db_write_timeout_seconds)
        execute = jobs_executor(settings, engine, config, bus)

        def ready(name: str) -> None:
            print(f"{READY} ({name}, {config.worker_concurrency} jobs at once)", file=sys.stderr)

        await serve(engine, config, execute, stop, on_ready=ready)
    except MigrationError as error:
        print(f"worker: {error}", file=sys.stderr)
        return 2
    except QueueUnavailable as error:
        print(f"worker: {error}", file=sys.stderr)
        return 1
    finally:
        await bus.close()
        await engine.dispose()
    print("worker: stopped", file=sys.stderr)
    return 0
