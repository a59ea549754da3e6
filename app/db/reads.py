"""Read queries, one statement each, returning rows read by position or by column name.

Every function that takes a list of parent ids answers for all of them in one statement, so a batch
loader above it costs one round trip per level of a GraphQL query. Rows are Core rows on SQLite;
on PostgreSQL the same statements run through asyncpg directly (app/db/pg_reads.py) and come back
as asyncpg's records, with the same columns and, by attribute, the same values (by position, enum
columns hold their stored names: read them with `models.enum_reader`). Either is cheaper than ORM
instances.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Executable,
    Integer,
    Select,
    Table,
    bindparam,
    func,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import models
from app.db.cursors import OrderKey
from app.db.pg_reads import PgRunner

bakeries = cast(Table, models.Bakery.__table__)
bakers = cast(Table, models.Baker.__table__)
suppliers = cast(Table, models.Supplier.__table__)
bakery_suppliers = models.bakery_suppliers
orders = cast(Table, models.CakeOrder.__table__)
products = cast(Table, models.Product.__table__)
photos = cast(Table, models.Photo.__table__)

# SQLite refuses compound selects of more than 500 terms (SQLITE_MAX_COMPOUND_SELECT).
SQLITE_MAX_UNION_TERMS = 500

# A read's rows: SQLAlchemy Core rows or asyncpg records; `row.column`, `row[i]`, `row._fields`.
Rows = Sequence[Any]

NEWEST_FIRST = (orders.c.created_at.desc(), orders.c.id.desc())


class Reader:
    """Read access to the bakery data; each method opens its own pooled connection.

    A connection per call (not a shared session) is what lets concurrent loaders run safely: an
    `AsyncSession` or connection must never be used by two coroutines at once.

    Statements are built once (module constants, or cached by shape) with bound parameters:
    building a SQLAlchemy statement and its cache key costs more than running a small query, so
    no request pays for it twice.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.dialect = engine.dialect.name
        # PostgreSQL: every read is one statement, atomic on its own, so it needs no transaction
        # around it: in autocommit it is one round trip instead of three (BEGIN, it, ROLLBACK).
        # (SQLite's BEGIN comes from our own `begin` hook in app/db/engine.py; left as is.)
        self.engine = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "postgresql"
            else engine
        )
        # PostgreSQL: asyncpg runs the statements itself, on the engine's pooled connections
        # (no transaction either), and SQLAlchemy's result processing is skipped.
        self.asyncpg = PgRunner(engine) if self.dialect == "postgresql" else None

    async def _all(self, statement: Executable, params: Mapping[str, Any] | None = None) -> Rows:
        if self.asyncpg is not None:
            return await self.asyncpg.fetch(statement, params)
        async with self.engine.connect() as conn:
            result = await conn.execute(statement, params)
            return result.all()

    async def _first(self, statement: Executable, params: Mapping[str, Any] | None = None) -> Any:
        if self.asyncpg is not None:
            rows = await self.asyncpg.fetch(statement, params)
            return rows[0] if rows else None
        async with self.engine.connect() as conn:
            result = await conn.execute(statement, params)
            return result.first()

    # ---- bakeries ----

    async def bakeries(self, region: models.Region | None, first: int) -> Rows:
        if region is None:
            return await self._all(_BAKERIES, {"first": first})
        return await self._all(_BAKERIES_OF_REGION, {"first": first, "region": region})

    async def bakeries_after(self, region: models.Region | None, after: int, limit: int) -> Rows:
        """Up to `limit` bakeries with an id above `after`, by id: one keyset page."""
        params: dict[str, Any] = {"after": after, "first": limit}
        if region is None:
            return await self._all(_BAKERIES_AFTER, params)
        return await self._all(_BAKERIES_OF_REGION_AFTER, {**params, "region": region})

    async def bakery_counts(self) -> Rows:
        """(region, count) for every region with bakeries: any region's total, and the sum."""
        return await self._all(_BAKERY_COUNTS)

    async def bakeries_by_id(self, ids: Sequence[int]) -> Rows:
        return await self._all(_BAKERIES_BY_ID, {"ids": list(ids)})

    async def bakeries_of_suppliers(self, supplier_ids: Sequence[int]) -> Rows:
        return await self._all(_BAKERIES_OF_SUPPLIERS, {"ids": list(supplier_ids)})

    # ---- orders ----

    async def orders_by_id(self, ids: Sequence[int]) -> Rows:
        return await self._all(_ORDERS_BY_ID, {"ids": list(ids)})

    async def newest_orders(
        self, bakery_ids: Sequence[int], limit: int, before: OrderKey | None = None
    ) -> Rows:
        """The `limit` newest orders of each bakery, by bakery then newest first, in SQL; with
        `before`, each bakery's newest orders older than that key (a keyset page per bakery)."""
        if not bakery_ids or limit <= 0:
            return []
        if self.dialect == "postgresql":
            shape = "lateral"
        elif len(bakery_ids) <= SQLITE_MAX_UNION_TERMS:
            shape = "union"
        else:
            shape = "window"
        return await self._all(*newest_orders_statement(shape, bakery_ids, limit, before))

    async def order_counts(self, bakery_ids: Sequence[int]) -> Rows:
        return await self._all(_ORDER_COUNTS, {"ids": list(bakery_ids)})

    # ---- people, suppliers, products, photos ----

    async def managers(self, bakery_ids: Sequence[int]) -> Rows:
        return await self._all(_MANAGERS, {"ids": list(bakery_ids)})

    async def baker_by_last_name(self, last_name: str) -> Any:
        return await self._first(_BAKER_BY_LAST_NAME, {"last_name": last_name})

    async def suppliers_of_bakeries(self, bakery_ids: Sequence[int]) -> Rows:
        return await self._all(_SUPPLIERS_OF_BAKERIES, {"ids": list(bakery_ids)})

    async def products(self) -> Rows:
        return await self._all(_PRODUCTS)

    async def latest_photos(self, order_ids: Sequence[int]) -> Rows:
        return await self._all(_LATEST_PHOTOS, {"ids": list(order_ids)})

    async def photo(self, photo_id: int) -> Any:
        return await self._first(_PHOTO, {"id": photo_id})


# ---- the statements, built once ----


def _ids() -> BindParameter[Any]:
    return bindparam("ids", expanding=True)


_BAKERIES = select(bakeries).order_by(bakeries.c.id).limit(bindparam("first", type_=Integer))
_BAKERIES_OF_REGION = (
    select(bakeries)
    .where(bakeries.c.region == bindparam("region"))
    .order_by(bakeries.c.id)
    .limit(bindparam("first", type_=Integer))
)
_BAKERIES_AFTER = (
    select(bakeries)
    .where(bakeries.c.id > bindparam("after", type_=Integer))
    .order_by(bakeries.c.id)
    .limit(bindparam("first", type_=Integer))
)
# No (region, id) index: with five regions, walking the primary key and skipping other regions
# reads about five rows per row returned, and SQLite's region index ends in the rowid anyway.
_BAKERIES_OF_REGION_AFTER = (
    select(bakeries)
    .where(
        bakeries.c.region == bindparam("region"), bakeries.c.id > bindparam("after", type_=Integer)
    )
    .order_by(bakeries.c.id)
    .limit(bindparam("first", type_=Integer))
)
_BAKERY_COUNTS = select(bakeries.c.region, func.count().label("count")).group_by(bakeries.c.region)
_BAKERIES_BY_ID = select(bakeries).where(bakeries.c.id.in_(_ids()))
_BAKERIES_OF_SUPPLIERS = (
    select(bakery_suppliers.c.supplier_id, *bakeries.c)
    .join(bakeries, bakeries.c.id == bakery_suppliers.c.bakery_id)
    .where(bakery_suppliers.c.supplier_id.in_(_ids()))
    .order_by(bakery_suppliers.c.supplier_id, bakeries.c.id)
)
_ORDERS_BY_ID = select(orders).where(orders.c.id.in_(_ids()))
_ORDER_COUNTS = (
    select(orders.c.bakery_id, func.count().label("count"))
    .where(orders.c.bakery_id.in_(_ids()))
    .group_by(orders.c.bakery_id)
)
_MANAGERS = (
    select(bakers)
    .where(bakers.c.bakery_id.in_(_ids()), bakers.c.is_manager.is_(True))
    .order_by(bakers.c.id)
)
_BAKER_BY_LAST_NAME = (
    select(bakers)
    .where(bakers.c.last_name == bindparam("last_name"))
    .order_by(bakers.c.id)
    .limit(1)
)
_SUPPLIERS_OF_BAKERIES = (
    select(bakery_suppliers.c.bakery_id, *suppliers.c)
    .join(suppliers, suppliers.c.id == bakery_suppliers.c.supplier_id)
    .where(bakery_suppliers.c.bakery_id.in_(_ids()))
    .order_by(bakery_suppliers.c.bakery_id, suppliers.c.id)
)
_PRODUCTS = select(products).order_by(products.c.id)
_LATEST_PHOTOS = select(photos).where(
    photos.c.id.in_(
        select(func.max(photos.c.id))
        .where(photos.c.order_id.in_(_ids()))
        .group_by(photos.c.order_id)
        .scalar_subquery()
    )
)
_PHOTO = select(photos).where(photos.c.id == bindparam("id"))


def newest_orders_statement(
    shape: str, bakery_ids: Sequence[int], limit: int, before: OrderKey | None = None
) -> tuple[Executable, dict[str, Any]]:
    """The statement of one SQL shape ("union", "window" or "lateral") for "the `limit` newest
    orders of each bakery" (older than `before`, when given), with its parameters. `Reader` picks
    the fastest per dialect; `benchmarks/sql_shapes.py` measures them."""
    keyed = before is not None
    if shape == "union":
        params: dict[str, Any] = {f"b{i}": bakery_id for i, bakery_id in enumerate(bakery_ids)}
        statement = _newest_orders_union(len(bakery_ids), keyed)
    else:
        params = {"ids": list(bakery_ids)}
        statement = _NEWEST_ORDERS[shape, keyed]
    params["lim"] = limit
    if before is not None:
        params["before_at"] = before.created_at
        params["before_id"] = before.id
    return statement, params


def _older_than_key() -> ColumnElement[bool]:
    # A row value: both dialects read it as one range on (bakery_id, created_at, id), the index
    # ix_cake_orders_bakery_newest, so a deep page is as cheap as the first.
    key = tuple_(
        bindparam("before_at", type_=models.UTCDateTime()),
        bindparam("before_id", type_=Integer),
    )
    return tuple_(orders.c.created_at, orders.c.id) < key


def _bakery_orders(bakery_id: ColumnElement[Any], keyed: bool) -> Select[tuple[object, ...]]:
    statement = select(orders).where(orders.c.bakery_id == bakery_id)
    return statement.where(_older_than_key()) if keyed else statement


@functools.lru_cache(maxsize=2 * SQLITE_MAX_UNION_TERMS)
def _newest_orders_union(count: int, keyed: bool = False) -> Executable:
    # One indexed LIMIT probe per bakery, glued with UNION ALL: on SQLite this beats
    # ROW_NUMBER() OVER (PARTITION BY ...) by ~1.8x (`python -m benchmarks.sql_shapes`). No outer
    # ORDER BY (it costs a temp B-tree, ~40% of the time): SQLite runs each term as a co-routine and
    # emits its rows in the term's own order, which tests/db/test_reads.py pins down.
    # Parameters b0..b{count-1} are the bakery ids, `lim` the limit; one statement per count.
    limit = bindparam("lim", type_=Integer)
    per_bakery = [
        _bakery_orders(bindparam(f"b{i}"), keyed)
        .order_by(*NEWEST_FIRST)
        .limit(limit)
        .subquery()
        .select()
        for i in range(count)
    ]
    return per_bakery[0] if len(per_bakery) == 1 else union_all(*per_bakery)


def _newest_orders_window(keyed: bool) -> Select[tuple[object, ...]]:
    # Portable, one statement for any number of bakeries; slower than the per-bakery probes.
    rank = func.row_number().over(partition_by=orders.c.bakery_id, order_by=NEWEST_FIRST)
    candidates = select(orders, rank.label("rank")).where(orders.c.bakery_id.in_(_ids()))
    if keyed:
        candidates = candidates.where(_older_than_key())
    ranked = candidates.subquery()
    columns = [ranked.c[column.name] for column in orders.c]
    return (
        select(*columns)
        .where(ranked.c.rank <= bindparam("lim", type_=Integer))
        .order_by(ranked.c.bakery_id, ranked.c.created_at.desc(), ranked.c.id.desc())
    )


def _newest_orders_lateral(keyed: bool) -> Select[tuple[object, ...]]:
    # PostgreSQL: one array parameter, and a LATERAL index probe per bakery.
    ids = (
        func.unnest(bindparam("ids", type_=postgresql.ARRAY(Integer)))
        .table_valued("id")
        .render_derived(name="parent")
    )
    newest = (
        _bakery_orders(ids.c.id, keyed)
        .order_by(*NEWEST_FIRST)
        .limit(bindparam("lim", type_=Integer))
        .lateral("newest")
    )
    return (
        select(newest)
        .select_from(ids)
        .join(newest, true())
        .order_by(newest.c.bakery_id, newest.c.created_at.desc(), newest.c.id.desc())
    )


_NEWEST_ORDERS = {
    (shape, keyed): build(keyed)
    for shape, build in (("window", _newest_orders_window), ("lateral", _newest_orders_lateral))
    for keyed in (False, True)
}
