"""Root query fields."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

import strawberry
from strawberry.types import Info

from app.db.reads import Reader
from loaders.dataloader import SafeDataLoader
from schema.access import ADMIN, READ, requires
from schema.audit import AuditEvent, audit_trail
from schema.connections import ALL_REGIONS, BakeryConnection, bakery_after, bakery_connection
from schema.directives import DATABASE, sliced_by
from schema.enums import Region
from schema.ids import parse_pk
from schema.keys import ApiKey, api_keys
from schema.rate_limit import RateLimit, resolve_rate_limit
from schema.types import Baker, Bakery, CakeOrder, Product, page_size

T = TypeVar("T")
ReadByIds = Callable[[Reader, Sequence[int]], Awaitable[Sequence[Any]]]


async def load_by_id(
    info: Info, raw_id: str, read: ReadByIds, build: Callable[[Any], T]
) -> T | None:
    """One record by id, through a request-wide loader: K root look-ups in a batch of operations
    share it, and cost one statement between them."""
    pk = parse_pk(raw_id)
    if pk is None:
        return None

    async def load(ids: list[int]) -> list[T | None]:
        found = {row.id: build(row) for row in await read(info.context.reader, ids)}
        return [found.get(key) for key in ids]

    registry = info.context.loaders
    loader = registry.get(("by_id", read), lambda: SafeDataLoader(load, inflight=registry.inflight))
    result: T | None = await loader.load(pk)
    return result


async def shared_read(
    info: Info, read: Callable[..., Awaitable[Any]], build: Callable[[Any], T], *arguments: Hashable
) -> T:
    """`build(read(reader, *arguments))` once per request: operations of one batch that ask the
    same root question (say `bakeries(first: 5)` under different selections) share one statement
    and the very same objects."""

    # The loader awaits `read`'s own coroutine (one key, the usual case: no task of its own),
    # and `finish` builds: no coroutine frame of ours between the loader and the SQL.
    def load(keys: list[tuple[Hashable, ...]]) -> Awaitable[Any]:
        reader = info.context.reader
        if len(keys) == 1:
            return read(reader, *keys[0])
        return asyncio.gather(*(read(reader, *key) for key in keys))

    def finish(keys: list[tuple[Hashable, ...]], outcome: Any) -> list[T]:
        return [build(outcome)] if len(keys) == 1 else [build(value) for value in outcome]

    registry = info.context.loaders
    loader = registry.get(
        ("root", read), lambda: SafeDataLoader(load, inflight=registry.inflight, finish=finish)
    )
    result: T = await loader.load(arguments)
    return result


BakeryPage = tuple[Region | None, Sequence[Any], int]


async def read_bakery_page(
    reader: Reader, region: Region | None, after_id: int, first: int
) -> BakeryPage:
    # `first + 1` rows: the one past the page says whether there is a next page.
    return region, await reader.bakeries_after(region, after_id, first + 1), first


def build_bakery_page(page: BakeryPage) -> BakeryConnection:
    # Everything the connection needs comes with the rows: the loader `shared_read` makes is
    # shared by every bakeriesConnection of the request, so no caller's closure may be used.
    region, rows, first = page
    scope = region.value if region is not None else ALL_REGIONS
    return bakery_connection(scope, Bakery.from_rows(rows), first)


@strawberry.type(directives=requires(READ))
class Query:
    @strawberry.field(
        description="All bakeries, or those of one region, ordered by id. "
        "`first` is capped by a server setting.",
        directives=[DATABASE, sliced_by("first")],
    )
    async def bakeries(
        self, info: Info, region: Region | None = strawberry.UNSET, first: int | None = 100
    ) -> Sequence[Bakery]:  # built from the rows when first read (schema/rows.py)
        # UNSET keeps the contract's SDL (`region: Region`, no default); it means "any region".
        chosen = region if region is not strawberry.UNSET else None
        limit = page_size(info, first, "first")
        return await shared_read(info, Reader.bakeries, Bakery.from_rows, chosen, limit)

    @strawberry.field(
        description="`bakeries` as a Relay connection: by id, `first` at a time (capped by a "
        "server setting), then the next page with `after: pageInfo.endCursor`. The order and key "
        "of REST's `GET /api/bakeries?after=`.",
        directives=[DATABASE, sliced_by("first", sized_fields=["edges"])],
    )
    async def bakeries_connection(
        self,
        info: Info,
        region: Region | None = strawberry.UNSET,
        first: int | None = 100,
        after: str | None = strawberry.UNSET,
    ) -> BakeryConnection:
        chosen = region if region is not strawberry.UNSET else None
        limit = page_size(info, first, "first")
        key = bakery_after(after, "bakeriesConnection")
        after_id = key.id if key is not None else 0
        return await shared_read(info, read_bakery_page, build_bakery_page, chosen, after_id, limit)

    @strawberry.field(directives=[DATABASE])
    async def bakery(self, info: Info, id: strawberry.ID) -> Bakery | None:
        return await load_by_id(info, id, Reader.bakeries_by_id, Bakery.from_row)

    @strawberry.field(directives=[DATABASE])
    async def cake_order(self, info: Info, id: strawberry.ID) -> CakeOrder | None:
        return await load_by_id(info, id, Reader.orders_by_id, CakeOrder.from_row)

    # No argument bounds the catalogue: costed as a full page (the server's max page size).
    @strawberry.field(directives=[DATABASE])
    async def products(self, info: Info) -> list[Product]:
        return await shared_read(info, Reader.products, Product.from_rows)

    @strawberry.field(
        description="The first baker (lowest id) with this exact last name, or null.",
        directives=[DATABASE],
    )
    async def find_baker(self, info: Info, last_name: str) -> Baker | None:
        if "\x00" in last_name:
            return None  # no stored name has a NUL, and PostgreSQL refuses one in a parameter
        return await shared_read(info, Reader.baker_by_last_name, Baker.from_optional, last_name)

    @strawberry.field(
        description="The newest writes first: who ran each (key id or anonymous) in which HTTP "
        "request. Needs the `admin` scope (and `read`, like every query).",
        directives=[*requires(ADMIN), DATABASE, sliced_by("first")],
    )
    async def audit_trail(
        self, info: Info, first: int | None = 50, caller: str | None = None
    ) -> list[AuditEvent]:
        return await audit_trail(info, first, caller)

    @strawberry.field(
        description="The API keys (never the key itself: only its hash is stored), oldest "
        "first. Needs the `admin` scope (and `read`, like every query).",
        directives=[*requires(ADMIN), DATABASE, sliced_by("first")],
    )
    async def api_keys(self, info: Info, first: int | None = 100) -> list[ApiKey]:
        return await api_keys(info, first)

    @strawberry.field(
        description="The client's rate-limit budget and this operation's cost; null when rate "
        "limiting is off (BATCHERY_RATE_LIMIT_ENABLED)."
    )
    def rate_limit(self, info: Info) -> RateLimit | None:
        return resolve_rate_limit(info)
