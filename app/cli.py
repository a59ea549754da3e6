"""`batchery`: serve the API, seed demo data, print the schema."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from app.settings import Settings, SettingsError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batchery", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--reload", action="store_true", help="restart on code changes (development)"
    )

    seed = commands.add_parser("seed", help="create the tables and fill them with demo data")
    seed.add_argument("--bakeries", type=int, default=50)
    seed.add_argument("--orders-per-bakery", type=int, default=200)
    seed.add_argument("--suppliers", type=int, default=12)
    seed.add_argument("--reset", action="store_true", help="delete every row first")
    seed.add_argument("--if-empty", action="store_true", help="do nothing when data is present")

    commands.add_parser("schema", help="print the GraphQL schema (SDL)")

    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        parser.error(str(error))
    if args.command == "serve":
        return _serve(settings, args)
    if args.command == "seed":
        return asyncio.run(_seed(settings, args))
    from schema import schema

    print(schema.as_str())
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

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
    )
    return 0


async def _seed(settings: Settings, args: argparse.Namespace) -> int:
    from app.db.engine import create_engine, create_tables
    from app.db.seed import SeedSize, is_empty, reset, seed

    engine = create_engine(settings.resolved_database_url)
    try:
        await create_tables(engine)
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


if __name__ == "__main__":
    raise SystemExit(main())
