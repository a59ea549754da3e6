"""Root query fields."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import strawberry
from strawberry.types import Info

from loaders.dataloader import SafeDataLoader
from schema.enums import Region
from schema.ids import parse_pk
from schema.types import Baker, Bakery, CakeOrder, Product, page_size

T = TypeVar("T")


def by_id(info: Info, name: str, fetch: Callable[[Sequence[int]], Awaitable[dict[int, T]]]) -> Any:
    """A request-wide loader of one kind of record by id: K root look-ups in a batch of
    operations share it, and cost one statement between them."""

    async def load(ids: list[int]) -> list[T | None]:
        found = await fetch(ids)
        return [found.get(pk) for pk in ids]

    return info.context.loaders.get(("by_id", name), lambda: SafeDataLoader(load))


@strawberry.type
class Query:
    @strawberry.field(
        description="All bakeries, or those of one region, ordered by id. "
        "`first` is capped by a server setting."
    )
    async def bakeries(
        self, info: Info, region: Region | None = strawberry.UNSET, first: int | None = 100
    ) -> list[Bakery]:
        # UNSET keeps the contract's SDL (`region: Region`, no default); it means "any region".
        chosen = region if region is not strawberry.UNSET else None
        limit = page_size(info, first, "first")
        reader = info.context.reader

        async def load(keys: list[tuple[Region | None, int]]) -> list[list[Bakery]]:
            return [Bakery.from_rows(await reader.bakeries(*key)) for key in keys]

        # Request-wide, like `by_id`: the K query operations of one HTTP batch asking for the
        # same page share one statement (and then the same bakeries, so their loaders too).
        loader = info.context.loaders.get(("bakeries",), lambda: SafeDataLoader(load))
        result: list[Bakery] = await loader.load((chosen, limit))
        return result

    @strawberry.field
    async def bakery(self, info: Info, id: strawberry.ID) -> Bakery | None:
        pk = parse_pk(id)
        if pk is None:
            return None

        async def fetch(ids: Sequence[int]) -> dict[int, Bakery]:
            rows = await info.context.reader.bakeries_by_id(ids)
            return {bakery.pk: bakery for bakery in Bakery.from_rows(rows)}

        result: Bakery | None = await by_id(info, "bakery", fetch).load(pk)
        return result

    @strawberry.field
    async def cake_order(self, info: Info, id: strawberry.ID) -> CakeOrder | None:
        pk = parse_pk(id)
        if pk is None:
            return None

        async def fetch(ids: Sequence[int]) -> dict[int, CakeOrder]:
            rows = await info.context.reader.orders_by_id(ids)
            return {order.pk: order for order in CakeOrder.from_rows(rows)}

        result: CakeOrder | None = await by_id(info, "cake_order", fetch).load(pk)
        return result

    @strawberry.field
    async def products(self, info: Info) -> list[Product]:
        return [Product.from_row(row) for row in await info.context.reader.products()]

    @strawberry.field(description="Mirrors the seed documents' findUser example.")
    async def find_baker(self, info: Info, last_name: str) -> Baker | None:
        row = await info.context.reader.baker_by_last_name(last_name)
        return Baker.from_row(row) if row is not None else None
