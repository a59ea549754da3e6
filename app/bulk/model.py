"""What a bulk request says and what it gets back: plain dataclasses, no transport in sight.

Field names follow the contract (`contract/bulk.md`); the GraphQL and REST layers only translate
their own shapes to and from these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Defined in the data layer, which stores them in a bulk job's row (app/db/job_model.py).
from app.db.job_model import BatchOptions as BatchOptions
from app.db.job_model import Operation as Operation


class ErrorCode:
    """The stable, machine-readable codes a client may branch on."""

    REQUIRED = "REQUIRED"
    INVALID_VALUE = "INVALID_VALUE"
    NOT_FOUND = "NOT_FOUND"
    DUPLICATE = "DUPLICATE"
    REFERENCE_NOT_FOUND = "REFERENCE_NOT_FOUND"
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    ALL_OR_NONE_ROLLED_BACK = "ALL_OR_NONE_ROLLED_BACK"
    NOT_PROCESSED = "NOT_PROCESSED"
    BATCH_TOO_LARGE = "BATCH_TOO_LARGE"
    BULK_DISABLED = "BULK_DISABLED"
    INTERNAL = "INTERNAL"
    # The database could not serve the batch (app/db/faults.py); nothing was written, retry it.
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    DATABASE_BUSY = "DATABASE_BUSY"


@dataclass(frozen=True, slots=True)
class RecordError:
    code: str
    message: str
    # The input field at fault, as the client wrote it (e.g. "data.name"), when there is one.
    field: str | None = None


@dataclass(frozen=True, slots=True)
class OptionOverrides:
    """The options a request spelled out; None means "left out", so the server default applies."""

    atomic: bool | None = None
    return_records: bool | None = None
    continue_on_error: bool | None = None
    validate_only: bool | None = None

    def over(self, defaults: BatchOptions) -> BatchOptions:
        return BatchOptions(
            atomic=_pick(self.atomic, defaults.atomic),
            return_records=_pick(self.return_records, defaults.return_records),
            continue_on_error=_pick(self.continue_on_error, defaults.continue_on_error),
            validate_only=_pick(self.validate_only, defaults.validate_only),
        )


def _pick(value: bool | None, default: bool) -> bool:
    return default if value is None else value


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """One record of a request. `id` is kept as sent (the engine parses it); `data` holds only
    the fields the client gave, keyed by their public names (e.g. "writtenPhrase")."""

    id: str | int | None = None
    data: Mapping[str, Any] | None = None
    external_id: str | None = None
    # How messages about other records name this one ("line 12" in an import); None: "record N".
    label: str | None = None


@dataclass(frozen=True, slots=True)
class BatchRequest:
    operation: Operation
    records: Sequence[BatchRecord]
    options: BatchOptions = field(default_factory=BatchOptions)


@dataclass(frozen=True, slots=True)
class RecordResult:
    index: int
    success: bool
    id: int | None = None
    errors: tuple[RecordError, ...] = ()
    # The written row (column name -> value), only when returnRecords asked for it.
    data: Mapping[str, Any] | None = None
    # UPSERT (and CREATE): True when a row was created, False when an existing one was updated.
    created: bool | None = None


@dataclass(frozen=True, slots=True)
class BatchMeta:
    batch_id: str
    duration_ms: float
    validate_only: bool
    atomic: bool


@dataclass(frozen=True, slots=True)
class BatchResponse:
    operation: Operation
    results: tuple[RecordResult, ...]
    meta: BatchMeta
    total: int
    succeeded: int
    # Set when the batch was refused or failed as a whole; then nothing was written and
    # `results` is empty, while `total` and `failed` still count the records sent.
    error: RecordError | None = None

    @property
    def failed(self) -> int:
        return self.total - self.succeeded

    @property
    def success(self) -> bool:
        return self.error is None and self.succeeded == self.total

    @classmethod
    def of(
        cls, operation: Operation, results: Sequence[RecordResult], meta: BatchMeta
    ) -> BatchResponse:
        succeeded = sum(1 for result in results if result.success)
        return cls(operation, tuple(results), meta, len(results), succeeded)

    @classmethod
    def refused(
        cls, operation: Operation, record_count: int, error: RecordError, meta: BatchMeta
    ) -> BatchResponse:
        return cls(operation, (), meta, record_count, 0, error)
