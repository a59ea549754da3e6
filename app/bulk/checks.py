"""The checks that ask the database, one statement per kind for the whole batch: rows that must
exist, external ids already taken (or, for UPSERT, matched), references to other rows.

They run inside the batch's write transaction, so on SQLite (write lock taken at BEGIN) nothing can
change between check and write; on PostgreSQL a concurrent change is still caught by the
constraints when writing, and the engine then retries record by record.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from app.bulk import sql
from app.bulk.entities import Entity
from app.bulk.model import ErrorCode, Operation
from app.bulk.validation import Pending, require_create_fields


async def check_database(
    conn: AsyncConnection, entity: Entity, operation: Operation, pending: list[Pending]
) -> None:
    if operation in (Operation.UPDATE, Operation.DELETE):
        await _rows_exist(conn, entity, pending)
    await _keys(conn, entity, operation, pending)
    if operation is not Operation.DELETE:
        await _references(conn, entity, pending)


async def _rows_exist(conn: AsyncConnection, entity: Entity, pending: list[Pending]) -> None:
    wanted = {record.pk for record in pending if record.pk is not None}
    if not wanted:
        return
    found = await sql.existing_ids(conn, entity.table, wanted)
    for record in pending:
        if record.pk is not None and record.pk not in found:
            record.fail(ErrorCode.NOT_FOUND, f"no {entity.label} has id {record.pk}", "id")


async def _keys(
    conn: AsyncConnection, entity: Entity, operation: Operation, pending: list[Pending]
) -> None:
    keys = {record.key for record in pending if record.key is not None}
    held = await sql.holders(conn, entity.table, entity.key_column, keys) if keys else {}
    for record in pending:
        if record.key is None:
            continue
        holder = held.get(record.key)
        if operation is Operation.UPSERT:
            record.created = holder is None
            if holder is None and not any(e.field == "data" for e in record.errors):
                require_create_fields(entity, record)
            else:
                record.pk = holder
        elif holder is not None and holder != record.pk:
            record.fail(
                ErrorCode.DUPLICATE,
                f"externalId {record.key!r} already belongs to {entity.label} {holder}",
                record.key_field,
            )


async def _references(conn: AsyncConnection, entity: Entity, pending: list[Pending]) -> None:
    for spec in entity.references():
        assert spec.references is not None
        wanted = {r.values[spec.column] for r in pending if r.values.get(spec.column) is not None}
        if not wanted:
            continue
        found = await sql.existing_ids(conn, spec.references, wanted)
        for record in pending:
            value = record.values.get(spec.column)
            if value is not None and value not in found:
                record.fail(
                    ErrorCode.REFERENCE_NOT_FOUND,
                    f"no {spec.reference_label} has id {value}",
                    f"data.{spec.name}",
                )
