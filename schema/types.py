"""The object types of the API and the batch functions behind their nested fields.

Every nested field that touches the database is a `batch_field`: it is resolved once per level of
the query for all parents together, so the query costs one statement per level.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from app.db.models import enum_reader
from loaders.builder import BatchResult, from_sources
from loaders.field import batch_field
from schema.connections import CakeOrderConnection, order_after, order_connection
from schema.directives import (
    BAKERIES_PER_SUPPLIER,
    DATABASE,
    SUPPLIERS_PER_BAKERY,
    sliced_by,
)
from schema.enums import OrderStatus, Region
from schema.rows import Rows, RowType, columns

Row = Any  # a SQLAlchemy Core row; attribute access by column name


def page_size(info: Info, requested: int | None, argument: str) -> int:
    """`first`/`limitTo`: negative is an error; more than the configured maximum is capped."""
    maximum: int = info.context.settings.max_page_size
    if requested is None:
        return maximum
    if requested < 0:
        raise GraphQLError(
            f"{argument} must be zero or more, got {requested}",
            extensions={"code": "BAD_USER_INPUT"},
        )
    return min(requested, maximum)


# ---- batch functions: all parents of one level in, each parent's share out ----


async def bakery_orders(
    bakeries: list[Bakery], info: Info, limit_to: int | None = 15
) -> BatchResult[CakeOrder]:
    limit = page_size(info, limit_to, "limitTo")
    rows = await info.context.reader.newest_orders([b.pk for b in bakeries], limit)
    # `key` names an attribute: the rows are grouped by its column, no objects built for that.
    return from_sources(bakeries).with_results(CakeOrder.from_rows(rows), key="bakery_pk")


async def bakery_orders_connection(
    bakeries: list[Bakery],
    info: Info,
    first: int | None = 15,
    after: str | None = strawberry.UNSET,
) -> dict[int, CakeOrderConnection]:
    # Every bakery gets its own page: `first + 1` rows each (the extra one says whether a next
    # page exists), in the one statement of `orders`, older than `after` when given.
    limit = page_size(info, first, "first")
    before = order_after(after, "Bakery.ordersConnection")
    rows = await info.context.reader.newest_orders([b.pk for b in bakeries], limit + 1, before)
    grouped: dict[int, list[CakeOrder]] = {b.pk: [] for b in bakeries}
    for order in CakeOrder.from_rows(rows):
        grouped[order.bakery_pk].append(order)
    return {pk: order_connection(pk, orders, limit) for pk, orders in grouped.items()}


async def bakery_order_counts(bakeries: list[Bakery], info: Info) -> dict[int, int]:
    rows = await info.context.reader.order_counts([b.pk for b in bakeries])
    counts = {row.bakery_id: row.count for row in rows}
    return {bakery.pk: counts.get(bakery.pk, 0) for bakery in bakeries}


async def bakery_manager(bakeries: list[Bakery], info: Info) -> BatchResult[Baker]:
    rows = await info.context.reader.managers([b.pk for b in bakeries])
    return from_sources(bakeries).with_results(
        [Baker.from_row(row) for row in rows], key=lambda baker: baker.bakery_pk
    )


async def bakery_suppliers(bakeries: list[Bakery], info: Info) -> BatchResult[Supplier]:
    rows = await info.context.reader.suppliers_of_bakeries([b.pk for b in bakeries])
    # A supplier shared by several bakeries is built once and listed under each of them.
    shared: dict[int, Supplier] = {}
    return from_sources(bakeries).with_pairs(
        (row.bakery_id, shared.get(row.id) or shared.setdefault(row.id, Supplier.from_row(row)))
        for row in rows
    )


async def supplier_bakeries(suppliers: list[Supplier], info: Info) -> BatchResult[Bakery]:
    rows = await info.context.reader.bakeries_of_suppliers([s.pk for s in suppliers])
    shared: dict[int, Bakery] = {}
    for bakery in Bakery.from_rows(rows):
        shared.setdefault(bakery.pk, bakery)
    return from_sources(suppliers).with_pairs(
        (supplier_pk, shared[pk]) for supplier_pk, pk in columns(rows, "supplier_id", "id")
    )


async def bakeries_by_id(info: Info, ids: Sequence[int]) -> dict[int, Bakery]:
    rows = await info.context.reader.bakeries_by_id(sorted(set(ids)))
    return {bakery.pk: bakery for bakery in Bakery.from_rows(rows)}


async def order_bakery(orders: list[CakeOrder], info: Info) -> dict[int, Bakery | None]:
    found = await bakeries_by_id(info, [o.bakery_pk for o in orders])
    return {order.pk: found.get(order.bakery_pk) for order in orders}


async def baker_bakery(bakers: list[Baker], info: Info) -> dict[int, Bakery | None]:
    found = await bakeries_by_id(info, [b.bakery_pk for b in bakers if b.bakery_pk is not None])
    return {baker.pk: found.get(baker.bakery_pk) if baker.bakery_pk else None for baker in bakers}


async def order_photo(orders: list[CakeOrder], info: Info) -> BatchResult[Photo]:
    rows = await info.context.reader.latest_photos([o.pk for o in orders])
    return from_sources(orders).with_results(
        [Photo.from_row(row) for row in rows], key=lambda photo: photo.order_pk
    )


# ---- object types ----


@strawberry.type
class Bakery:
    pk: strawberry.Private[int]
    id: strawberry.ID
    external_id: str | None
    name: str
    region: Region

    orders: list[CakeOrder] = batch_field(
        bakery_orders,
        description="Newest first (createdAt desc, then id desc). "
        "1 source -> N results: [] when there are none. Batched.",
        directives=[DATABASE, sliced_by("limitTo")],
    )
    orders_connection: CakeOrderConnection = batch_field(
        bakery_orders_connection,
        description="`orders` as a Relay connection: newest first, `first` per bakery (capped by "
        "a server setting), then the next page with `after: pageInfo.endCursor`. Batched: one "
        "statement per level, each bakery with its own page.",
        directives=[DATABASE, sliced_by("first", sized_fields=["edges"])],
    )
    order_count: int = batch_field(
        bakery_order_counts, description="Batched aggregate.", directives=[DATABASE]
    )
    manager: Baker | None = batch_field(
        bakery_manager,
        description="1 source -> 1 result (sibling relation). "
        "null when the bakery has no manager. Batched.",
        directives=[DATABASE],
    )
    suppliers: list[Supplier] = batch_field(
        bakery_suppliers,
        description="N sources -> N results (many-to-many). Batched.",
        directives=[DATABASE, SUPPLIERS_PER_BAKERY],
    )

    @classmethod
    def from_row(cls, row: Row) -> Bakery:
        """From anything with the columns as attributes (a row, or the bulk engine's records)."""
        return BAKERY_ROWS.one(row)

    @classmethod
    def from_rows(cls, rows: Sequence[Row]) -> Rows[Bakery]:
        """Built when first read: a selection of plain fields goes from the rows to JSON."""
        return BAKERY_ROWS.rows(rows)


# Enum columns through `enum_reader`: PostgreSQL's records hold the stored names by position.
BAKERY_ROWS = RowType(
    Bakery,
    pk="id",
    id=("id", str),
    external_id="external_id",
    name="name",
    region=("region", enum_reader(Region)),
)


@strawberry.type
class CakeOrder:
    pk: strawberry.Private[int]
    bakery_pk: strawberry.Private[int]
    id: strawberry.ID
    external_id: str | None
    written_phrase: str
    current_total: int = strawberry.field(description="Whole dollars.")
    status: OrderStatus
    created_at: datetime

    bakery: Bakery = batch_field(
        order_bakery, description="N -> 1. Batched.", directives=[DATABASE]
    )
    photo: Photo | None = batch_field(
        order_photo,
        description="The last photo uploaded for this order, if any. Batched.",
        directives=[DATABASE],
    )

    @classmethod
    def from_row(cls, row: Row) -> CakeOrder:
        """From anything with the columns as attributes (a row, or the bulk engine's records)."""
        return ORDER_ROWS.one(row)

    @classmethod
    def from_rows(cls, rows: Sequence[Row]) -> Rows[CakeOrder]:
        """Built when first read: a selection of plain fields goes from the rows to JSON."""
        return ORDER_ROWS.rows(rows)


ORDER_ROWS = RowType(
    CakeOrder,
    pk="id",
    bakery_pk="bakery_id",
    id=("id", str),
    external_id="external_id",
    written_phrase="written_phrase",
    current_total="current_total",
    status=("status", enum_reader(OrderStatus)),
    created_at="created_at",
)


@strawberry.type
class Baker:
    pk: strawberry.Private[int]
    bakery_pk: strawberry.Private[int | None]
    id: strawberry.ID
    first_name: str
    last_name: str

    bakery: Bakery | None = batch_field(baker_bakery, directives=[DATABASE])

    @classmethod
    def from_optional(cls, row: Row | None) -> Baker | None:
        return None if row is None else cls.from_row(row)

    @classmethod
    def from_row(cls, row: Row) -> Baker:
        return cls(
            pk=row.id,
            bakery_pk=row.bakery_id,
            id=strawberry.ID(str(row.id)),
            first_name=row.first_name,
            last_name=row.last_name,
        )


@strawberry.type
class Supplier:
    pk: strawberry.Private[int]
    id: strawberry.ID
    name: str

    bakeries: list[Bakery] = batch_field(
        supplier_bakeries, description="Batched.", directives=[DATABASE, BAKERIES_PER_SUPPLIER]
    )

    @classmethod
    def from_row(cls, row: Row) -> Supplier:
        return cls(pk=row.id, id=strawberry.ID(str(row.id)), name=row.name)


@strawberry.type
class Product:
    pk: strawberry.Private[int]
    id: strawberry.ID
    name: str
    stock: int

    @classmethod
    def from_rows(cls, rows: Sequence[Row]) -> list[Product]:
        return [cls.from_row(row) for row in rows]

    @classmethod
    def from_row(cls, row: Row) -> Product:
        return cls(pk=row.id, id=strawberry.ID(str(row.id)), name=row.name, stock=row.stock)


@strawberry.type
class Photo:
    pk: strawberry.Private[int]
    order_pk: strawberry.Private[int]
    id: strawberry.ID
    filename: str
    content_type: str
    size: int
    sha256: str

    @strawberry.field(
        description="Where the bytes can be fetched back with GET (a path on this server)."
    )
    def url(self) -> str:
        return f"/photos/{self.pk}"

    @classmethod
    def from_row(cls, row: Row) -> Photo:
        return cls(
            pk=row.id,
            order_pk=row.order_id,
            id=strawberry.ID(str(row.id)),
            filename=row.filename,
            content_type=row.content_type,
            size=row.size,
            sha256=row.sha256,
        )
