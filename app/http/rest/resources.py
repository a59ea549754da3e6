"""REST resources for clients that do not speak GraphQL: bakeries and cake orders.

Every write goes through the bulk engine (a single-record route is a batch of one), so REST and
GraphQL apply the same rules and give the same error codes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.bulk import (
    BAKERIES,
    CAKE_ORDERS,
    BatchOptions,
    BatchRecord,
    BatchRequest,
    BatchResponse,
    BulkEngine,
    Entity,
    ErrorCode,
    Operation,
    RecordResult,
)
from app.bulk.entities import parse_id
from app.bulk_settings import bulk_engine
from app.db.cursors import CursorError, decode_bakery
from app.db.faults import DatabaseBusy, DatabaseUnavailable
from app.db.models import INT_MAX, Region
from app.http.rest.access import guarded
from app.http.rest.costs import charge_call, charged
from app.http.rest.idempotency import idempotent
from app.http.rest.io import (
    Handler,
    HttpError,
    answers_errors,
    bad_request,
    json_response,
    query_int,
    read_json,
)
from app.http.rest.shapes import (
    batch_json,
    error_json,
    parse_batch,
    parse_data,
    parse_delete_many,
    row_json,
)
from app.http.throttle import with_rate_headers
from schema.access import BULK, READ, WRITE


def _guarded(handler: Handler, scope: str) -> Handler:
    return guarded(answers_errors(handler), scope)


Filter = Callable[[Request], list[ColumnElement[bool]]]

FAULT_RETRY_AFTER = {
    ErrorCode.DATABASE_UNAVAILABLE: DatabaseUnavailable.retry_after_seconds,
    ErrorCode.DATABASE_BUSY: DatabaseBusy.retry_after_seconds,
}

# The status of a bulk response refused as a whole, by its error code.
REFUSAL_STATUS = {
    ErrorCode.BATCH_TOO_LARGE: 413,
    ErrorCode.BULK_DISABLED: 403,
    ErrorCode.INTERNAL: 500,
    ErrorCode.DATABASE_UNAVAILABLE: 503,
    ErrorCode.DATABASE_BUSY: 503,
}


def bulk_status(response: BatchResponse) -> int:
    """200 when every record succeeded, 207 when the results are mixed or all failed."""
    if response.error is not None:
        return REFUSAL_STATUS.get(response.error.code, 400)
    return 200 if response.success else 207


def retry_headers(response: BatchResponse) -> dict[str, str] | None:
    """`Retry-After` for a batch the database could not serve (a retry may work)."""
    if response.error is None or response.error.code not in FAULT_RETRY_AFTER:
        return None
    return {"Retry-After": str(FAULT_RETRY_AFTER[response.error.code])}


def record_status(result: RecordResult) -> int:
    codes = {error.code for error in result.errors}
    if ErrorCode.NOT_FOUND in codes and any(e.field == "id" for e in result.errors):
        return 404
    if ErrorCode.DUPLICATE in codes:
        return 409
    return 422


def _max_body(request: Request) -> int:
    return int(request.app.state.settings.max_body_bytes)


def _bulk(request: Request) -> BulkEngine:
    return bulk_engine(request.app.state.engine, request.app.state.settings)


class Resource:
    def __init__(self, entity: Entity, path: str, filters: Filter) -> None:
        self.entity = entity
        self.path = path
        self.filters = filters

    def routes(self) -> list[Route]:
        # `{id:int}`: `/bulk` and `/delete-many` must never be read as an id (GET gets a 405).
        base, one = f"/{self.path}", f"/{self.path}/{{id:int}}"
        # Each route needs the scope of its GraphQL twin (app/http/rest/access.py), checked
        # before anything is charged or read. Bulk routes charge per record, once their body is
        # read; the others up front.
        routes = [
            Route(f"{base}/bulk", _guarded(self.bulk, BULK), methods=["POST"]),
            Route(base, _guarded(charged(self.list), READ), methods=["GET"]),
            Route(base, _guarded(charged(self.create), WRITE), methods=["POST"]),
            Route(one, _guarded(charged(self.get), READ), methods=["GET"]),
            Route(one, _guarded(charged(self.update), WRITE), methods=["PATCH"]),
            Route(one, _guarded(charged(self.delete), WRITE), methods=["DELETE"]),
        ]
        if self.entity is BAKERIES:
            delete_many = Route(
                f"{base}/delete-many", _guarded(self.delete_many, BULK), methods=["POST"]
            )
            routes.insert(1, delete_many)
        return routes

    def fallback_routes(self) -> list[Route]:
        """`/{path}/{anything}` that `{id:int}` did not take: a malformed id, not a lost route."""
        methods = ["GET", "PATCH", "DELETE"]
        return [Route(f"/{self.path}/{{id}}", answers_errors(self.invalid_id), methods=methods)]

    async def invalid_id(self, request: Request) -> Response:
        raise bad_request(
            f"invalid id {request.path_params['id']!r}: a {self.entity.label} id is a whole "
            f"number from 1 to {INT_MAX}",
            "id",
        )

    # ---- bulk ----

    async def bulk(self, request: Request) -> Response:
        body = await read_json(request, _max_body(request))
        paid = await charge_call(request, body)
        operation, records, options = parse_batch(body)
        response = await idempotent(
            request, body, lambda: self._run(request, operation, records, options)
        )
        return with_rate_headers(response, paid)

    async def delete_many(self, request: Request) -> Response:
        body = await read_json(request, _max_body(request))
        paid = await charge_call(request, body)
        ids, options = parse_delete_many(body)
        records = [BatchRecord(id=pk) for pk in ids]
        response = await idempotent(
            request, body, lambda: self._run(request, Operation.DELETE, records, options)
        )
        return with_rate_headers(response, paid)

    async def _run(
        self, request: Request, operation: Operation, records: list[BatchRecord], options: Any
    ) -> Response:
        bulk = _bulk(request)
        response = await bulk.run(
            self.entity, BatchRequest(operation, records, bulk.options(options))
        )
        return json_response(
            batch_json(self.entity, response), bulk_status(response), retry_headers(response)
        )

    # ---- one record ----

    async def list(self, request: Request) -> Response:
        table = self.entity.table
        maximum = request.app.state.settings.max_page_size
        first = min(query_int(request, "first", 100), maximum)
        after = self._after(request)
        statement = (
            select(table)
            .where(table.c.id > after, *self.filters(request))
            .order_by(table.c.id)
            .limit(first)
        )
        async with request.app.state.engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        items = [row_json(self.entity, self.entity.row_data(row)) for row in rows]
        return json_response({"data": items})

    async def get(self, request: Request) -> Response:
        pk = self._pk(request)
        table = self.entity.table
        async with request.app.state.engine.connect() as conn:
            row = (await conn.execute(select(table).where(table.c.id == pk))).first()
        if row is None:
            raise self._not_found(request)
        return json_response(row_json(self.entity, self.entity.row_data(row)))

    async def create(self, request: Request) -> Response:
        body = await read_json(request, _max_body(request))
        record = BatchRecord(data=parse_data(body))

        async def work() -> Response:
            result = await self._one(request, Operation.CREATE, record)
            if isinstance(result, Response):
                return result
            location = f"/api/{self.path}/{result.id}"
            return json_response(self._data(result), 201, {"Location": location})

        return await idempotent(request, body, work)

    async def update(self, request: Request) -> Response:
        body = await read_json(request, _max_body(request))
        record = BatchRecord(id=self._pk(request), data=parse_data(body))

        async def work() -> Response:
            result = await self._one(request, Operation.UPDATE, record)
            return result if isinstance(result, Response) else json_response(self._data(result))

        return await idempotent(request, body, work)

    async def delete(self, request: Request) -> Response:
        record = BatchRecord(id=self._pk(request))

        async def work() -> Response:
            result = await self._one(request, Operation.DELETE, record)
            return result if isinstance(result, Response) else Response(status_code=204)

        return await idempotent(request, None, work)

    async def _one(
        self, request: Request, operation: Operation, record: BatchRecord
    ) -> RecordResult | Response:
        batch = BatchRequest(operation, (record,), BatchOptions(return_records=True))
        response = await _bulk(request).run_one(self.entity, batch)
        if response.error is not None:
            status = REFUSAL_STATUS.get(response.error.code, 500)
            raise HttpError(
                status, response.error.code, response.error.message, None, retry_headers(response)
            )
        (result,) = response.results
        if result.success:
            return result
        errors = [error_json(error) for error in result.errors]
        return json_response({"error": errors[0], "errors": errors}, record_status(result))

    def _data(self, result: RecordResult) -> dict[str, Any]:
        assert result.data is not None
        return row_json(self.entity, result.data)

    def _after(self, request: Request) -> int:
        """`after`: an id; for bakeries, a GraphQL `bakeriesConnection` cursor too (the same
        order and key: the cursor is the id, wrapped), so a client can switch APIs mid-list."""
        raw = request.query_params.get("after")
        if self.entity is not BAKERIES or raw is None or raw.isdigit():
            return query_int(request, "after", 0)
        try:
            return decode_bakery(raw).id
        except CursorError as error:
            raise bad_request(
                f"after must be a bakery id (a whole number from 0 to {INT_MAX}) or a cursor of "
                f"bakeriesConnection; {raw[:40]!r} is {error}",
                "after",
            ) from None

    def _pk(self, request: Request) -> int:
        raw = request.path_params["id"]
        if raw == 0:
            raise bad_request(
                f"invalid id '0': a {self.entity.label} id is a whole number from 1 to {INT_MAX}",
                "id",
            )
        pk = parse_id(raw)
        if pk is None:
            raise self._not_found(request)
        return pk

    def _not_found(self, request: Request) -> HttpError:
        wanted = request.path_params["id"]
        return HttpError(404, "NOT_FOUND", f"no {self.entity.label} has id {wanted!r}", "id")


def _bakery_filters(request: Request) -> list[ColumnElement[bool]]:
    region = request.query_params.get("region")
    if region is None:
        return []
    if region not in Region.__members__:
        names = ", ".join(Region.__members__)
        raise bad_request(f"region must be one of {names}, got {region!r}", "region")
    return [BAKERIES.table.c.region == Region[region]]


def _order_filters(request: Request) -> list[ColumnElement[bool]]:
    if "bakeryId" not in request.query_params:
        return []
    return [CAKE_ORDERS.table.c.bakery_id == query_int(request, "bakeryId", 0, minimum=1)]


RESOURCES = (
    Resource(BAKERIES, "bakeries", _bakery_filters),
    Resource(CAKE_ORDERS, "cake-orders", _order_filters),
)


def resource_routes() -> list[Route]:
    return [route for resource in RESOURCES for route in resource.routes()]


def resource_fallbacks() -> list[Route]:
    return [route for resource in RESOURCES for route in resource.fallback_routes()]
