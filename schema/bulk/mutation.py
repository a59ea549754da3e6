"""The bulk mutations of contract/bulk.md: thin translations onto `app.bulk`."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from app.bulk import (
    BAKERIES,
    CAKE_ORDERS,
    BatchRecord,
    BatchRequest,
    BatchResponse,
    Entity,
    ErrorCode,
    Operation,
    OptionOverrides,
)
from app.bulk.codec import decode_response, encode_response
from app.bulk.orders import OrderLine, OrdersRefused, place_orders
from app.bulk_settings import bulk_engine
from schema.access import BULK, requires
from schema.bulk.idempotency import idempotent
from schema.bulk.inputs import (
    BakeryBatchRequest,
    BatchOptions,
    CakeOrderBatchRequest,
    PlaceOrderInput,
    overrides,
    to_record,
)
from schema.bulk.outputs import BakeryBatchResponse, CakeOrderBatchResponse
from schema.directives import DATABASE, sliced_by
from schema.types import CakeOrder

RETRYABLE = frozenset({ErrorCode.INTERNAL, ErrorCode.DATABASE_UNAVAILABLE, ErrorCode.DATABASE_BUSY})

# Sized by the records sent: the write is charged per record, `results` has one item per record.
PER_RECORD = [DATABASE, sliced_by("request.records", sized_fields=["results"])]


async def run_batch(
    info: Info,
    entity: Entity,
    operation: Operation,
    records: list[BatchRecord],
    options: OptionOverrides | None,
) -> BatchResponse:
    bulk = bulk_engine(info.context.engine, info.context.settings)
    request = BatchRequest(operation, records, bulk.options(options))
    return await idempotent(
        info,
        [entity.name, request],
        lambda: bulk.run(entity, request),
        encode=lambda response: encode_response(entity, response),
        decode=lambda text: decode_response(entity, text),
        # Faults are not answers: a retry under the same key must run again.
        keep=lambda response: response.error is None or response.error.code not in RETRYABLE,
    )


@strawberry.type
class BulkMutation:
    @strawberry.mutation(
        description="Bulk create/update/upsert/delete of bakeries: every record validated first, "
        "then written per `options` (atomic, continueOnError, validateOnly, returnRecords).",
        directives=[*requires(BULK), *PER_RECORD],
    )
    async def batch_bakeries(self, info: Info, request: BakeryBatchRequest) -> BakeryBatchResponse:
        records = [to_record(record) for record in request.records]
        response = await run_batch(
            info, BAKERIES, request.operation, records, overrides(request.options)
        )
        return BakeryBatchResponse.build(response)

    @strawberry.mutation(
        description="Bulk create/update/upsert/delete of cake orders: every record validated "
        "first, then written per `options`; bakeryId must name an existing bakery.",
        directives=[*requires(BULK), *PER_RECORD],
    )
    async def batch_cake_orders(
        self, info: Info, request: CakeOrderBatchRequest
    ) -> CakeOrderBatchResponse:
        records = [to_record(record) for record in request.records]
        response = await run_batch(
            info, CAKE_ORDERS, request.operation, records, overrides(request.options)
        )
        return CakeOrderBatchResponse.build(response)

    @strawberry.mutation(
        description="Delete by ids (max per batch applies).",
        directives=[*requires(BULK), DATABASE, sliced_by("ids", sized_fields=["results"])],
    )
    async def delete_many_bakeries(
        self,
        info: Info,
        ids: list[strawberry.ID],
        options: BatchOptions | None = strawberry.UNSET,
    ) -> BakeryBatchResponse:
        records = [BatchRecord(id=pk) for pk in ids]
        chosen = options if options is not strawberry.UNSET else None
        response = await run_batch(info, BAKERIES, Operation.DELETE, records, overrides(chosen))
        return BakeryBatchResponse.build(response)

    @strawberry.mutation(
        description="All-or-nothing: checks and decrements product stock and creates the "
        "orders in one transaction.",
        directives=[*requires(BULK), DATABASE, sliced_by("orders")],
    )
    async def place_orders(self, info: Info, orders: list[PlaceOrderInput]) -> list[CakeOrder]:
        lines = [OrderLine(o.bakery_id, o.product_id, o.quantity, o.written_phrase) for o in orders]
        max_lines = info.context.settings.max_records_per_batch

        async def work() -> list[dict[str, Any]]:
            try:
                return await place_orders(info.context.engine, lines, max_lines=max_lines)
            except OrdersRefused as refused:
                raise GraphQLError(
                    str(refused),
                    extensions={
                        "code": refused.code,
                        "errors": [
                            {
                                "index": e.index,
                                "code": e.error.code,
                                "message": e.error.message,
                                "field": e.error.field,
                            }
                            for e in refused.errors
                        ],
                    },
                ) from None

        rows = await idempotent(
            info,
            lines,
            work,
            encode=lambda placed: orjson.dumps(
                [CAKE_ORDERS.encode_row(r) for r in placed]
            ).decode(),
            decode=lambda text: [CAKE_ORDERS.decode_row(r) for r in orjson.loads(text)],
        )
        return [CakeOrder.from_row(SimpleNamespace(**row)) for row in rows]
