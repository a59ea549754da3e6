"""`batchery keys create|list|revoke`: API keys, managed from the server's shell.

The key is printed once, on stdout alone (so `KEY=$(batchery keys create ...)` works); everything
else goes to stderr. Only its hash is stored.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import Any

from app.settings import Settings

SCOPES = ("read", "write", "bulk", "admin")  # schema/access.py; tests/app/test_cli_keys.py checks


def add_parser(commands: Any, epilog: str) -> None:
    keys = commands.add_parser(
        "keys",
        help="create, list and revoke API keys",
        description="API keys for 'Authorization: Bearer <key>' (README: Authentication and "
        "access).",
        epilog=epilog,
    )
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="make a key; it is printed once, on stdout")
    create.add_argument("--name", required=True, help="who or what the key is for")
    create.add_argument(
        "--scopes",
        required=True,
        type=_scopes,
        help=f"comma-separated, from: {', '.join(SCOPES)} (e.g. read,write,bulk)",
    )
    create.add_argument(
        "--expires-days", type=int, metavar="N", help="the key stops working after N days"
    )
    actions.add_parser("list", help="every key: id, name, scopes, dates (never the key)")
    revoke = actions.add_parser("revoke", help="refuse a key from the next request on")
    revoke.add_argument("id", help="the key's id (the part after bch_, as 'keys list' shows)")


def _scopes(raw: str) -> list[str]:
    scopes = [scope.strip() for scope in raw.split(",") if scope.strip()]
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown or not scopes:
        raise argparse.ArgumentTypeError(
            f"scopes are a comma-separated list of {', '.join(SCOPES)}; got {raw!r}"
        )
    return list(dict.fromkeys(scopes))


async def run(settings: Settings, args: argparse.Namespace) -> int:
    from app.db import keys
    from app.db.migrate import MigrationError, prepare
    from app.db.reachable import DatabaseUnreachable, open_checked
    from app.settings import hide_password

    try:
        engine = await open_checked(
            settings.resolved_database_url, hide_password(settings.resolved_database_url)
        )
    except DatabaseUnreachable as error:
        print(f"keys: {error}", file=sys.stderr)
        return 1
    try:
        try:
            # As `serve` does: the keys table comes with the migrations.
            await prepare(engine, migrate=settings.migrate_on_start)
        except MigrationError as error:
            print(f"keys: {error}", file=sys.stderr)
            return 2
        if args.keys_command == "create":
            if args.expires_days is not None and args.expires_days < 1:
                print("keys: --expires-days must be at least 1", file=sys.stderr)
                return 2
            expires = timedelta(days=args.expires_days) if args.expires_days else None
            new = await keys.create_key(engine, args.name, args.scopes, expires_in=expires)
            print(
                f"keys: created key {new.info.id} ({new.info.name!r}, scopes "
                f"{','.join(new.info.scopes)}"
                + (f", expires {new.info.expires_at:%Y-%m-%d %H:%M} UTC" if expires else "")
                + "). It is shown once, here; only its hash is stored:",
                file=sys.stderr,
            )
            print(new.key, flush=True)
            return 0
        if args.keys_command == "list":
            found = await keys.list_keys(engine)
            print(f"{'id':12}  {'status':8}  {'scopes':22}  {'created (UTC)':16}  name")
            for info in found:
                status = "revoked" if info.revoked_at else "active"
                if info.revoked_at is None and info.expires_at is not None:
                    status = f"expires {info.expires_at:%Y-%m-%d}"
                print(
                    f"{info.id:12}  {status:8}  {','.join(info.scopes):22}  "
                    f"{info.created_at:%Y-%m-%d %H:%M}  {info.name}"
                )
            return 0
        revoked = await keys.revoke_key(engine, args.id)
        if revoked is None:
            print(
                f"keys: there is no key with id {args.id!r} (see: batchery keys list)",
                file=sys.stderr,
            )
            return 1
        print(
            f"keys: key {revoked.id} ({revoked.name!r}) is revoked: refused from the next "
            "request on, by every server on this database",
            file=sys.stderr,
        )
        return 0
    finally:
        await engine.dispose()
