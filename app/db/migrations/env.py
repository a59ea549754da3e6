"""Alembic's environment: run by Alembic for every command, on the connection that
`app.db.migrate` opened, locked and began a transaction on (so the whole upgrade is one
transaction, and concurrent workers starting at once wait for each other instead of racing)."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext

from app.db.models import Base, UTCDateTime

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "Batchery's migrations run through `batchery migrate` (app.db.migrate), which hands "
        "Alembic a locked connection; they are not meant for the bare `alembic` command"
    )


def render_item(kind: str, item: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Revisions must not import the models (a later change to a model would rewrite history):
    # the models' UTCDateTime is, in the database, a timezone-aware DateTime.
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things: batch mode rebuilds the table (copy, drop, rename).
    render_as_batch=True,
    # SQLite's DDL is transactional once pysqlite stops managing transactions (app/db/engine.py).
    transactional_ddl=True,
    compare_type=True,
    render_item=render_item,
)
context.run_migrations()
