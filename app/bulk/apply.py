"""One batch inside a transaction the caller owns: check everything, choose what to write per the
options, write it, and say what happened to each record.

Writes are set-based: one statement per kind of write for the whole batch. Only when the database
refuses such a statement (a race on PostgreSQL, or a rule the checks do not know) does the caller
roll back and run the batch again with `isolated=True`: then each record is written in a savepoint
of its own, so the one at fault gets the database's error and the others are unaffected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.bulk import sql
from app.bulk.checks import check_database
from app.bulk.entities import Entity
from app.bulk.model import BatchRequest, ErrorCode, Operation, RecordError, RecordResult
from app.bulk.validation import Pending, validate

DATABASE_ERRORS = (IntegrityError, DataError)


class SetWriteFailed(Exception):
    """A set-based statement was refused: the transaction is spoiled; rerun it isolated."""


async def apply(
    conn: AsyncConnection, entity: Entity, request: BatchRequest, *, isolated: bool = False
) -> list[RecordResult]:
    options = request.options
    pending = validate(entity, request.operation, request.records)
    await check_database(conn, entity, request.operation, pending)
    stops = not options.atomic and not options.continue_on_error
    stop_at = _first_failure(pending) if stops else None
    if options.atomic:
        chosen = pending if all(record.ok for record in pending) else []
    elif stop_at is not None:
        chosen = pending[:stop_at]
    else:
        chosen = [record for record in pending if record.ok]
    if isolated:
        failed_at = await _write_each(conn, entity, chosen, stop=stops)
        if failed_at is not None:
            stop_at = failed_at
    else:
        await _write_set(conn, entity, chosen)
    return _results(entity, request, pending, stop_at)


def _first_failure(pending: Sequence[Pending]) -> int | None:
    return next((record.index for record in pending if not record.ok), None)


async def _write_set(conn: AsyncConnection, entity: Entity, chosen: Sequence[Pending]) -> None:
    table = entity.table
    creates = [record for record in chosen if record.creates]
    updates = [
        r for r in chosen if r.operation in (Operation.UPDATE, Operation.UPSERT) and not r.creates
    ]
    deletes = [record for record in chosen if record.operation is Operation.DELETE]
    try:
        if updates:
            changed = await sql.update_rows(conn, table, {r.pk: r.values for r in updates if r.pk})
            _attach(updates, changed)
        if creates:
            rows = await sql.insert_rows(conn, table, [record.values for record in creates])
            for record, row in zip(creates, rows, strict=True):
                record.pk, record.row = row.id, row
        if deletes:
            _attach(deletes, await sql.delete_rows(conn, table, [r.pk for r in deletes if r.pk]))
    except DATABASE_ERRORS as error:
        raise SetWriteFailed(str(error.orig)) from error


def _attach(records: Sequence[Pending], rows: Mapping[int, object]) -> None:
    for record in records:
        if record.pk is None or record.pk not in rows:
            # Deleted by someone else since the check: only a record-by-record run can tell
            # which records came before it.
            raise SetWriteFailed(f"row {record.pk} vanished between check and write")
        record.row = rows[record.pk]


async def _write_each(
    conn: AsyncConnection, entity: Entity, chosen: Sequence[Pending], *, stop: bool
) -> int | None:
    """Each record in a savepoint; returns the index where processing stopped, if it did."""
    for record in chosen:
        try:
            async with conn.begin_nested():
                await _write_one(conn, entity, record)
        except DATABASE_ERRORS as error:
            code, message, at = database_error(entity, error)
            # The key may have been given at the record's level (UPSERT, CREATE).
            record.fail(code, message, record.key_field if at == "data.externalId" else at)
        if stop and not record.ok:
            return record.index
    return None


async def _write_one(conn: AsyncConnection, entity: Entity, record: Pending) -> None:
    table = entity.table
    if record.creates:
        (row,) = await sql.insert_rows(conn, table, [record.values])
        record.pk, record.row = row.id, row
        return
    assert record.pk is not None
    if record.operation is Operation.DELETE:
        found = await sql.delete_rows(conn, table, [record.pk])
    else:
        found = await sql.update_rows(conn, table, {record.pk: record.values})
    if record.pk in found:
        record.row = found[record.pk]
    else:
        record.fail(ErrorCode.NOT_FOUND, f"no {entity.label} has id {record.pk}", "id")


def database_error(
    entity: Entity, error: IntegrityError | DataError
) -> tuple[str, str, str | None]:
    """A refused write as a record error: which rule, and the field at fault when it shows."""
    text = str(error.orig).lower()
    at = next((f"data.{f.name}" for f in entity.fields if f.column in text), None)
    if "unique" in text or "duplicate key" in text:
        return ErrorCode.DUPLICATE, "a value that must be unique is already taken", at
    if "foreign key" in text:
        reference = next(iter(entity.references()), None)
        label = reference.reference_label if reference else "row"
        field = f"data.{reference.name}" if reference else at
        return ErrorCode.REFERENCE_NOT_FOUND, f"the {label} it refers to does not exist", field
    return ErrorCode.INVALID_VALUE, "the database refused a value of this record", at


def _results(
    entity: Entity, request: BatchRequest, pending: Sequence[Pending], stop_at: int | None
) -> list[RecordResult]:
    options = request.options
    failed = [record.index for record in pending if not record.ok]
    rolled_back = options.atomic and bool(failed)
    results = []
    for record in pending:
        # A created row exists only if kept: not after a rollback, not in a dry run.
        known_id = None if record.creates else record.pk
        if stop_at is not None and record.index > stop_at:
            error = RecordError(
                ErrorCode.NOT_PROCESSED,
                f"not processed: the batch stopped at {pending[stop_at].name} "
                "(continueOnError is false)",
            )
            results.append(RecordResult(record.index, False, known_id, (error,)))
        elif not record.ok:
            results.append(RecordResult(record.index, False, known_id, tuple(record.errors)))
        elif rolled_back:
            error = RecordError(
                ErrorCode.ALL_OR_NONE_ROLLED_BACK,
                f"not written: the batch is atomic and record(s) {_list(failed)} failed",
            )
            results.append(RecordResult(record.index, False, known_id, (error,)))
        else:
            kept = not options.validate_only
            data = entity.row_data(record.row) if kept and options.return_records else None
            created = record.creates if request.operation is not Operation.DELETE else None
            pk = record.pk if kept or not record.creates else None
            results.append(RecordResult(record.index, True, pk, (), data, created))
    return results


def _list(indexes: Sequence[int], shown: int = 5) -> str:
    head = ", ".join(map(str, indexes[:shown]))
    return head + (f" and {len(indexes) - shown} more" if len(indexes) > shown else "")
