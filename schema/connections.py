"""Relay connections: lists a client can page through with `first` and `after`.

The contract's lists (`bakeries(first:)`, `Bakery.orders(limitTo:)`) stop at one page. Their
connection twins (`bakeriesConnection`, `Bakery.ordersConnection`) follow the Relay cursor
connection specification, forward half: `edges { cursor node }`, `pageInfo { hasNextPage
endCursor ... }` and `totalCount`. Cursors are keyset cursors (app/db/cursors.py): the next page
starts after the last row seen, whatever was inserted or deleted before it meanwhile.

A page of `first` rows is read as `first + 1` rows in one statement: the extra row, dropped,
is what says whether there is a next page. `totalCount` is a batch field of its own, so it costs
a statement only when asked for (one per level, like every other batched field).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, TypeVar

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from app.db.cursors import (
    BakeryKey,
    CursorError,
    OrderKey,
    bakery_cursor,
    decode_bakery,
    decode_order,
    order_cursor,
)
from loaders.field import batch_field
from schema.directives import DATABASE
from schema.rows import constructor

if TYPE_CHECKING:
    from schema.types import Bakery, CakeOrder

T = TypeVar("T")
E = TypeVar("E")

# The scope of a root connection that is not limited to one region.
ALL_REGIONS = "*"


@strawberry.type(
    description="Where a page of a connection stands (Relay). Forward paging only: "
    "hasPreviousPage is always false, as the Relay specification allows for `first`/`after`."
)
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="True when there are rows after this page: ask again with `after: endCursor`."
    )
    has_previous_page: bool
    start_cursor: str | None = strawberry.field(description="The first edge's cursor.")
    end_cursor: str | None = strawberry.field(
        description="The last edge's cursor (null when the page is empty): the next `after`."
    )


_new_page_info = constructor(
    PageInfo, "has_next_page", "has_previous_page", "start_cursor", "end_cursor"
)


@strawberry.type(description="A bakery and its position in the connection.")
class BakeryEdge:
    cursor: str
    node: Annotated[Bakery, strawberry.lazy("schema.types")]


@strawberry.type(description="A cake order and its position in the connection.")
class CakeOrderEdge:
    cursor: str
    node: Annotated[CakeOrder, strawberry.lazy("schema.types")]


_new_bakery_edge = constructor(BakeryEdge, "cursor", "node")
_new_order_edge = constructor(CakeOrderEdge, "cursor", "node")


async def bakery_totals(connections: list[BakeryConnection], info: Info) -> dict[str, int]:
    rows = await info.context.reader.bakery_counts()
    counts = {row.region.value: row.count for row in rows}
    counts[ALL_REGIONS] = sum(counts.values())
    return {c.scope: counts.get(c.scope, 0) for c in connections}


async def order_totals(connections: list[CakeOrderConnection], info: Info) -> dict[int, int]:
    rows = await info.context.reader.order_counts(sorted({c.bakery_pk for c in connections}))
    counts = {row.bakery_id: row.count for row in rows}
    return {c.bakery_pk: counts.get(c.bakery_pk, 0) for c in connections}


@strawberry.type(description="A page of bakeries, by id (Relay connection).")
class BakeryConnection:
    scope: strawberry.Private[str]  # the region's name, or ALL_REGIONS
    edges: list[BakeryEdge]
    page_info: PageInfo
    total_count: int = batch_field(
        bakery_totals,
        key=lambda connection: connection.scope,
        description="Bakeries in the whole list (every page). One statement when asked for.",
        directives=[DATABASE],
    )


@strawberry.type(description="A page of a bakery's cake orders, newest first (Relay connection).")
class CakeOrderConnection:
    bakery_pk: strawberry.Private[int]
    edges: list[CakeOrderEdge]
    page_info: PageInfo
    total_count: int = batch_field(
        order_totals,
        key=lambda connection: connection.bakery_pk,
        description="The bakery's orders in all (every page). Batched: one statement per level.",
        directives=[DATABASE],
    )


_new_bakery_connection = constructor(BakeryConnection, "scope", "edges", "page_info")
_new_order_connection = constructor(CakeOrderConnection, "bakery_pk", "edges", "page_info")


def _page(
    nodes: Sequence[T], first: int, cursor: Callable[[T], str], edge: Callable[[str, T], E]
) -> tuple[list[E], PageInfo]:
    """The edges of the first `first` nodes (read as `first + 1`), and the page's PageInfo."""
    shown = nodes[:first]
    cursors = [cursor(node) for node in shown]
    edges = [edge(c, node) for c, node in zip(cursors, shown, strict=True)]
    start, end = (cursors[0], cursors[-1]) if cursors else (None, None)
    return edges, _new_page_info(len(nodes) > first, False, start, end)


def bakery_connection(scope: str, bakeries: Sequence[Bakery], first: int) -> BakeryConnection:
    edges, info = _page(bakeries, first, lambda b: bakery_cursor(b.pk), _new_bakery_edge)
    return _new_bakery_connection(scope, edges, info)


def order_connection(
    bakery_pk: int, orders: Sequence[CakeOrder], first: int
) -> CakeOrderConnection:
    edges, info = _page(orders, first, lambda o: order_cursor(o.created_at, o.pk), _new_order_edge)
    return _new_order_connection(bakery_pk, edges, info)


# ---- `after` ----


def _refused(field: str, cursor: str, reason: str) -> GraphQLError:
    shown = cursor if len(cursor) <= 40 else cursor[:40] + "..."
    return GraphQLError(
        f"after is not a cursor of {field}: {shown!r} is {reason}. Pass pageInfo.endCursor "
        "(or an edge's cursor) of this field, or leave after out for the first page.",
        extensions={"code": "BAD_USER_INPUT", "argument": "after"},
    )


def bakery_after(after: str | None, field: str) -> BakeryKey | None:
    if after is None or after is strawberry.UNSET:
        return None
    try:
        return decode_bakery(after)
    except CursorError as error:
        raise _refused(field, after, str(error)) from None


def order_after(after: str | None, field: str) -> OrderKey | None:
    if after is None or after is strawberry.UNSET:
        return None
    try:
        return decode_order(after)
    except CursorError as error:
        raise _refused(field, after, str(error)) from None
