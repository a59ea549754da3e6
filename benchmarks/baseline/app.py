"""Stock Strawberry, written the way its documentation shows: `strawberry.asgi.GraphQL` with
batching (`batching_config`) and multipart uploads on, a context with one set of aiodataloader
loaders per request, resolvers that `await loader.load(key)` per parent.

    uvicorn benchmarks.baseline.app:app
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import strawberry
from aiodataloader import DataLoader
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.file_uploads import Upload
from strawberry.schema.config import StrawberryConfig

from app.db.models import OrderStatus, Region
from app.db.reads import Reader
from benchmarks.common import (
    CountRequests,
    Resources,
    healthz,
    lifespan,
    stats_endpoint,
    store_upload,
)

MAX_PAGE = 1000

Region = strawberry.enum(Region)  # type: ignore[misc]
OrderStatus = strawberry.enum(OrderStatus)  # type: ignore[misc]


@strawberry.type
class CakeOrder:
    pk: strawberry.Private[int]
    id: strawberry.ID
    external_id: str | None
    written_phrase: str
    current_total: int
    status: OrderStatus
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> CakeOrder:
        return cls(
            pk=row.id,
            id=strawberry.ID(str(row.id)),
            external_id=row.external_id,
            written_phrase=row.written_phrase,
            current_total=row.current_total,
            status=row.status,
            created_at=row.created_at,
        )


@strawberry.type
class Supplier:
    pk: strawberry.Private[int]
    id: strawberry.ID
    name: str

    @strawberry.field
    async def bakeries(self, info: strawberry.Info) -> list[Bakery]:
        result: list[Bakery] = await info.context["loaders"].supplier_bakeries.load(self.pk)
        return result


@strawberry.type
class Bakery:
    pk: strawberry.Private[int]
    id: strawberry.ID
    external_id: str | None
    name: str
    region: Region

    @strawberry.field
    async def orders(self, info: strawberry.Info, limit_to: int | None = 15) -> list[CakeOrder]:
        limit = MAX_PAGE if limit_to is None else min(max(limit_to, 0), MAX_PAGE)
        result: list[CakeOrder] = await info.context["loaders"].orders(limit).load(self.pk)
        return result

    @strawberry.field
    async def suppliers(self, info: strawberry.Info) -> list[Supplier]:
        result: list[Supplier] = await info.context["loaders"].bakery_suppliers.load(self.pk)
        return result

    @classmethod
    def from_row(cls, row: Any) -> Bakery:
        return cls(
            pk=row.id,
            id=strawberry.ID(str(row.id)),
            external_id=row.external_id,
            name=row.name,
            region=row.region,
        )


@strawberry.type
class Photo:
    id: strawberry.ID
    filename: str
    content_type: str
    size: int
    sha256: str


class Loaders:
    """One set per request (per HTTP request: the operations of a batch share it)."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self._orders: dict[int, DataLoader] = {}  # type: ignore[type-arg]
        self.bakery_suppliers = DataLoader(self._bakery_suppliers)
        self.supplier_bakeries = DataLoader(self._supplier_bakeries)

    def orders(self, limit: int) -> DataLoader:  # type: ignore[type-arg]
        loader = self._orders.get(limit)
        if loader is None:

            async def load(bakery_ids: list[int]) -> list[list[CakeOrder]]:
                rows = await self.reader.newest_orders(bakery_ids, limit)
                return _grouped(bakery_ids, rows, "bakery_id", CakeOrder.from_row)

            loader = self._orders[limit] = DataLoader(load)
        return loader

    async def _bakery_suppliers(self, bakery_ids: list[int]) -> list[list[Supplier]]:
        rows = await self.reader.suppliers_of_bakeries(bakery_ids)
        return _grouped(
            bakery_ids,
            rows,
            "bakery_id",
            lambda r: Supplier(pk=r.id, id=strawberry.ID(str(r.id)), name=r.name),
        )

    async def _supplier_bakeries(self, supplier_ids: list[int]) -> list[list[Bakery]]:
        rows = await self.reader.bakeries_of_suppliers(supplier_ids)
        return _grouped(supplier_ids, rows, "supplier_id", Bakery.from_row)


def _grouped(keys: Sequence[int], rows: Sequence[Any], column: str, make: Any) -> list[Any]:
    groups: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        groups[getattr(row, column)].append(make(row))
    return [groups.get(key, []) for key in keys]


@strawberry.type
class Query:
    @strawberry.field
    async def bakeries(
        self, info: strawberry.Info, region: Region | None = None, first: int | None = 100
    ) -> list[Bakery]:
        limit = MAX_PAGE if first is None else min(max(first, 0), MAX_PAGE)
        rows = await info.context["reader"].bakeries(region, limit)
        return [Bakery.from_row(row) for row in rows]


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def upload_order_photo(
        self, info: strawberry.Info, order_id: strawberry.ID, file: Upload
    ) -> Photo:
        stored = await store_upload(
            info.context["resources"],
            int(order_id),
            file.filename or "upload",  # type: ignore[attr-defined]
            file.content_type or "application/octet-stream",  # type: ignore[attr-defined]
            file.read,  # type: ignore[attr-defined]
        )
        return Photo(
            id=strawberry.ID(str(stored.id)),
            filename=stored.filename,
            content_type=stored.content_type,
            size=stored.size,
            sha256=stored.sha256,
        )


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    config=StrawberryConfig(batching_config={"max_operations": 100}),
)

_state: dict[str, Resources] = {}


class BaselineGraphQL(GraphQL):  # type: ignore[type-arg]
    async def get_context(self, request: Any, response: Any) -> dict[str, Any]:
        resources = _state["resources"]
        return {
            "request": request,
            "resources": resources,
            "reader": resources.reader,
            "loaders": Loaders(resources.reader),
        }


graphql_app = BaselineGraphQL(schema, multipart_uploads_enabled=True)

app = Starlette(
    routes=[
        Route("/graphql", graphql_app, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/bench/stats", stats_endpoint(_state)),
    ],
    lifespan=lifespan(_state),
    middleware=[Middleware(CountRequests, state=_state)],
)
