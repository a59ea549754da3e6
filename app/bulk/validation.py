"""The checks that need no database: shape, value rules, and duplicates inside the batch.

Every record is checked, and every problem of a record is reported (not just the first), so one
round trip tells a client everything that is wrong with its batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.bulk.entities import Entity, InvalidValue, convert, parse_id
from app.bulk.model import BatchRecord, ErrorCode, Operation, RecordError


@dataclass(slots=True)
class Pending:
    """One record on its way through the engine."""

    index: int
    operation: Operation
    # How messages name this record: "record <index>", or the caller's label ("line 12").
    name: str = ""
    pk: int | None = None
    # The unique external id the row holds after the write, and where the client wrote it.
    key: str | None = None
    key_field: str = "externalId"
    # Column -> value to write, and the public names of the data fields the client gave.
    values: dict[str, Any] = field(default_factory=dict)
    given: set[str] = field(default_factory=set)
    errors: list[RecordError] = field(default_factory=list)
    # UPSERT: whether the row is (or would be) created; known once the database was asked.
    created: bool | None = None
    # The row as written, from RETURNING.
    row: Any = None

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def creates(self) -> bool:
        return self.operation is Operation.CREATE or (
            self.operation is Operation.UPSERT and bool(self.created)
        )

    def fail(self, code: str, message: str, at: str | None = None) -> None:
        self.errors.append(RecordError(code, message, at))


def validate(entity: Entity, operation: Operation, records: Sequence[BatchRecord]) -> list[Pending]:
    pending = [_check(entity, operation, index, record) for index, record in enumerate(records)]
    _flag_duplicates(operation, pending)
    return pending


def _check(entity: Entity, operation: Operation, index: int, record: BatchRecord) -> Pending:
    pending = Pending(index, operation, record.label or f"record {index}")
    verb = operation.value
    if operation in (Operation.UPDATE, Operation.DELETE):
        _check_id(entity, record, pending)
        if record.external_id is not None:
            pending.fail(
                ErrorCode.INVALID_VALUE,
                f"{verb} finds the {entity.label} by id; externalId selects records only in UPSERT"
                + (" (to change it, set data.externalId)" if operation is Operation.UPDATE else ""),
                "externalId",
            )
    elif record.id is not None:
        pending.fail(
            ErrorCode.INVALID_VALUE,
            f"{verb} does not take an id: "
            + (
                "the server assigns it"
                if operation is Operation.CREATE
                else "it matches on externalId"
            ),
            "id",
        )
    if operation is Operation.DELETE:
        if record.data is not None:
            pending.fail(ErrorCode.INVALID_VALUE, "DELETE takes only the id, not data", "data")
        return pending
    if record.data is None:
        pending.fail(ErrorCode.REQUIRED, f"{verb} needs data", "data")
    else:
        _convert_data(entity, record.data, pending)
        if operation is Operation.CREATE:
            require_create_fields(entity, pending)
        elif not record.data:
            pending.fail(
                ErrorCode.INVALID_VALUE,
                f"data changes nothing: give at least one of {entity.field_names}",
                "data",
            )
    _check_key(entity, operation, record, pending)
    return pending


def _check_id(entity: Entity, record: BatchRecord, pending: Pending) -> None:
    if record.id is None:
        pending.fail(ErrorCode.REQUIRED, f"{pending.operation.value} needs an id", "id")
        return
    pending.pk = parse_id(record.id)
    if pending.pk is None:
        pending.fail(ErrorCode.NOT_FOUND, f"no {entity.label} has id {record.id!r}", "id")


def _convert_data(entity: Entity, data: Mapping[str, Any], pending: Pending) -> None:
    for name, value in data.items():
        spec = entity.field(name)
        if spec is None:
            pending.fail(
                ErrorCode.INVALID_VALUE,
                f"unknown field {name!r}; a {entity.label} has {entity.field_names}",
                f"data.{name}",
            )
            continue
        pending.given.add(name)
        try:
            pending.values[spec.column] = convert(spec, value)
        except InvalidValue as problem:
            pending.fail(problem.code, problem.message, f"data.{name}")


def require_create_fields(entity: Entity, pending: Pending) -> None:
    """What creating a row needs on top of the given data: required fields, then defaults."""
    for spec in entity.fields:
        if spec.name in pending.given:
            continue
        if spec.required:
            pending.fail(
                ErrorCode.REQUIRED,
                f"{spec.name} is required to create a {entity.label}",
                f"data.{spec.name}",
            )
        else:
            pending.values.setdefault(spec.column, spec.default)


def _check_key(entity: Entity, operation: Operation, record: BatchRecord, pending: Pending) -> None:
    spec = entity.field(entity.key_field)
    assert spec is not None
    given_in_data = record.data is not None and entity.key_field in record.data
    if operation is Operation.UPSERT and record.external_id is None:
        pending.fail(ErrorCode.REQUIRED, "UPSERT matches on externalId; give it", "externalId")
        return
    if record.external_id is not None and operation in (Operation.CREATE, Operation.UPSERT):
        try:
            key = convert(spec, record.external_id)
        except InvalidValue as problem:
            pending.fail(problem.code, problem.message, "externalId")
            return
        if given_in_data and pending.values.get(spec.column, key) != key:
            pending.fail(
                ErrorCode.INVALID_VALUE,
                "data.externalId differs from the record's externalId; give one of them",
                "data.externalId",
            )
            return
        pending.values[spec.column] = key
        pending.key = key
        return
    if given_in_data:
        pending.key = pending.values.get(spec.column)
        pending.key_field = "data.externalId"


def _flag_duplicates(operation: Operation, pending: list[Pending]) -> None:
    """A later record naming the same row or the same external id as an earlier one fails."""
    first_by_id: dict[int, Pending] = {}
    first_by_key: dict[str, Pending] = {}
    for record in pending:
        if record.pk is not None and operation in (Operation.UPDATE, Operation.DELETE):
            first = first_by_id.setdefault(record.pk, record)
            if first is not record:
                record.fail(
                    ErrorCode.DUPLICATE,
                    f"id {record.pk} appears earlier in the batch ({first.name})",
                    "id",
                )
        if record.key is not None:
            first = first_by_key.setdefault(record.key, record)
            if first is not record:
                record.fail(
                    ErrorCode.DUPLICATE,
                    f"externalId {record.key!r} appears earlier in the batch ({first.name})",
                    record.key_field,
                )
