"""The result types of the bulk mutations, built from the engine's `BatchResponse`."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, TypeVar

import strawberry

from app.bulk import BatchMeta as EngineMeta
from app.bulk import BatchResponse, Operation
from app.bulk import RecordError as EngineError
from schema.directives import ERRORS_PER_RECORD
from schema.types import Bakery, CakeOrder


@strawberry.type
class RecordError:
    code: str = strawberry.field(
        description="Stable, machine-readable: REQUIRED, INVALID_VALUE, NOT_FOUND, DUPLICATE, "
        "ALL_OR_NONE_ROLLED_BACK, NOT_PROCESSED, ..."
    )
    message: str
    field: str | None = strawberry.field(
        description="The input field at fault, when there is one (e.g. data.name)."
    )

    @classmethod
    def build(cls, error: EngineError) -> RecordError:
        return cls(code=error.code, message=error.message, field=error.field)


@strawberry.type
class BatchMeta:
    batch_id: strawberry.ID
    duration_ms: float
    validate_only: bool
    atomic: bool

    @classmethod
    def build(cls, meta: EngineMeta) -> BatchMeta:
        return cls(
            batch_id=strawberry.ID(meta.batch_id),
            duration_ms=meta.duration_ms,
            validate_only=meta.validate_only,
            atomic=meta.atomic,
        )


@strawberry.type
class BakeryBatchResult:
    index: int = strawberry.field(description="Position of the record in the request.")
    id: strawberry.ID | None
    success: bool
    errors: list[RecordError] = strawberry.field(directives=[ERRORS_PER_RECORD])
    data: Bakery | None = strawberry.field(
        description="Only when options.returnRecords is true and the record was written."
    )
    created: bool | None = strawberry.field(
        description="True when the record created a row, false when it updated one "
        "(UPSERT tells which); null for DELETE and failed records."
    )


@strawberry.type
class BakeryBatchResponse:
    success: bool = strawberry.field(description="True when every record succeeded.")
    operation: Operation
    total: int
    succeeded: int
    failed: int
    results: list[BakeryBatchResult]
    error: RecordError | None = strawberry.field(
        description="Set when the batch as a whole was refused (e.g. too many records); "
        "then no record was processed."
    )
    meta: BatchMeta

    @classmethod
    def build(cls, response: BatchResponse) -> BakeryBatchResponse:
        return _response(cls, _results(BakeryBatchResult, Bakery.from_row, response), response)


@strawberry.type
class CakeOrderBatchResult:
    index: int
    id: strawberry.ID | None
    success: bool
    errors: list[RecordError] = strawberry.field(directives=[ERRORS_PER_RECORD])
    data: CakeOrder | None
    created: bool | None


@strawberry.type
class CakeOrderBatchResponse:
    success: bool
    operation: Operation
    total: int
    succeeded: int
    failed: int
    results: list[CakeOrderBatchResult]
    error: RecordError | None
    meta: BatchMeta

    @classmethod
    def build(cls, response: BatchResponse) -> CakeOrderBatchResponse:
        return _response(
            cls, _results(CakeOrderBatchResult, CakeOrder.from_row, response), response
        )


def _id(pk: int | None) -> strawberry.ID | None:
    return strawberry.ID(str(pk)) if pk is not None else None


Result = TypeVar("Result", BakeryBatchResult, CakeOrderBatchResult)
Response = TypeVar("Response", BakeryBatchResponse, CakeOrderBatchResponse)


def _results(
    kind: type[Result], from_row: Callable[[Any], Any], response: BatchResponse
) -> list[Result]:
    return [
        kind(
            index=result.index,
            id=_id(result.id),
            success=result.success,
            errors=[RecordError.build(error) for error in result.errors],
            data=from_row(SimpleNamespace(**result.data)) if result.data else None,
            created=result.created,
        )
        for result in response.results
    ]


def _response(kind: type[Response], results: list[Any], response: BatchResponse) -> Response:
    return kind(
        success=response.success,
        operation=response.operation,
        total=response.total,
        succeeded=response.succeeded,
        failed=response.failed,
        results=results,
        error=RecordError.build(response.error) if response.error else None,
        meta=BatchMeta.build(response.meta),
    )
