"""The input types of the bulk mutations, as the contract writes them, and their translation into
the bulk engine's requests."""

from __future__ import annotations

import dataclasses
from typing import Any

import strawberry
from strawberry.utils.str_converters import to_camel_case

from app.bulk import BatchRecord, Operation, OptionOverrides
from schema.enums import OrderStatus, Region

# The engine's enum is the GraphQL enum: one list of operations.
strawberry.enum(Operation, name="BatchOperationType")


@strawberry.input
class BatchOptions:
    atomic: bool | None = strawberry.field(
        default=False, description="Roll back the whole batch if any record fails."
    )
    return_records: bool | None = strawberry.field(
        default=False, description="Return each record's full data in the results."
    )
    continue_on_error: bool | None = strawberry.field(
        default=True,
        description="With atomic = false: go on after a failed record "
        "(false: stop; the rest are NOT_PROCESSED).",
    )
    validate_only: bool | None = strawberry.field(
        default=False,
        description="Run every check a real write would run, including database constraints, "
        "and persist nothing.",
    )

    def overrides(self) -> OptionOverrides:
        # An explicit null means "the server's default", like leaving `options` out.
        return OptionOverrides(
            atomic=self.atomic,
            return_records=self.return_records,
            continue_on_error=self.continue_on_error,
            validate_only=self.validate_only,
        )


def overrides(options: BatchOptions | None) -> OptionOverrides | None:
    return options.overrides() if options else None


@strawberry.input
class BakeryInput:
    name: str | None = strawberry.UNSET
    region: Region | None = strawberry.UNSET
    external_id: str | None = strawberry.UNSET


@strawberry.input
class BakeryBatchRecord:
    id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Required for UPDATE and DELETE."
    )
    data: BakeryInput | None = strawberry.field(
        default=strawberry.UNSET, description="Required for CREATE, UPDATE and UPSERT."
    )
    external_id: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="UPSERT matches on this external id: updates the bakery that has it, "
        "or creates one.",
    )


@strawberry.input
class BakeryBatchRequest:
    operation: Operation
    records: list[BakeryBatchRecord]
    options: BatchOptions | None = strawberry.UNSET


@strawberry.input
class CakeOrderInput:
    bakery_id: strawberry.ID | None = strawberry.UNSET
    written_phrase: str | None = strawberry.UNSET
    current_total: int | None = strawberry.UNSET
    status: OrderStatus | None = strawberry.UNSET
    external_id: str | None = strawberry.UNSET


@strawberry.input
class CakeOrderBatchRecord:
    id: strawberry.ID | None = strawberry.UNSET
    data: CakeOrderInput | None = strawberry.UNSET
    external_id: str | None = strawberry.UNSET


@strawberry.input
class CakeOrderBatchRequest:
    operation: Operation
    records: list[CakeOrderBatchRecord]
    options: BatchOptions | None = strawberry.UNSET


@strawberry.input
class PlaceOrderInput:
    bakery_id: strawberry.ID
    product_id: strawberry.ID
    quantity: int
    written_phrase: str


AnyRecord = BakeryBatchRecord | CakeOrderBatchRecord


def to_record(record: AnyRecord) -> BatchRecord:
    return BatchRecord(
        id=_given(record.id),
        data=given_fields(record.data) if _given(record.data) is not None else None,
        external_id=_given(record.external_id),
    )


def given_fields(data: Any) -> dict[str, Any]:
    """The fields a client wrote in an input object, by their public (camelCase) names."""
    values = ((to_camel_case(f.name), getattr(data, f.name)) for f in dataclasses.fields(data))
    return {name: value for name, value in values if value is not strawberry.UNSET}


def _given(value: Any) -> Any:
    return None if value is strawberry.UNSET else value
