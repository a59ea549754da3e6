"""Read queries, one statement each, returning plain SQLAlchemy rows.

Every function that takes a list of parent ids answers for all of them in one statement, so a batch
loader above it costs one round trip per level of a GraphQL query. Rows are Core rows (named
tuples), cheaper than ORM instances for read-only data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Integer, Row, Select, Table, bindparam, func, select, true, union_all
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import models

bakeries = cast(Table, models.Bakery.__table__)
bakers = cast(Table, models.Baker.__table__)
suppliers = cast(Table, models.Supplier.__table__)
bakery_suppliers = models.bakery_suppliers
orders = cast(Table, models.CakeOrder.__table__)
products = cast(Table, models.Product.__table__)
photos = cast(Table, models.Photo.__table__)

# SQLite refuses compound selects of more than 500 terms (SQLITE_MAX_COMPOUND_SELECT).
SQLITE_MAX_UNION_TERMS = 500

NEWEST_FIRST = (orders.c.created_at.desc(), orders.c.id.desc())


class Reader:
    """Read access to the bakery data; each method opens its own pooled connection.

    A connection per call (not a shared session) is what lets concurrent loaders run safely: an
    `AsyncSession` or connection must never be used by two coroutines at once.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    async def _all(
        self, statement: Select[tuple[object, ...]]
    ) -> Sequence[Row[tuple[object, ...]]]:
        async with self.engine.connect() as conn:
            result = await conn.execute(statement)
            return result.all()

    async def _first(self, statement: Select[tuple[object, ...]]) -> Row[tuple[object, ...]] | None:
        async with self.engine.connect() as conn:
            result = await conn.execute(statement)
            return result.first()

    # ---- bakeries ----

    async def bakeries(
        self, region: models.Region | None, first: int
    ) -> Sequence[Row[tuple[object, ...]]]:
        statement = select(bakeries).order_by(bakeries.c.id).limit(first)
        if region is not None:
            statement = statement.where(bakeries.c.region == region)
        return await self._all(statement)

    async def bakeries_by_id(self, ids: Sequence[int]) -> Sequence[Row[tuple[object, ...]]]:
        return await self._all(select(bakeries).where(bakeries.c.id.in_(ids)))

    async def bakeries_of_suppliers(
        self, supplier_ids: Sequence[int]
    ) -> Sequence[Row[tuple[object, ...]]]:
        statement = (
            select(bakery_suppliers.c.supplier_id, *bakeries.c)
            .join(bakeries, bakeries.c.id == bakery_suppliers.c.bakery_id)
            .where(bakery_suppliers.c.supplier_id.in_(supplier_ids))
            .order_by(bakery_suppliers.c.supplier_id, bakeries.c.id)
        )
        return await self._all(statement)

    # ---- orders ----

    async def orders_by_id(self, ids: Sequence[int]) -> Sequence[Row[tuple[object, ...]]]:
        return await self._all(select(orders).where(orders.c.id.in_(ids)))

    async def newest_orders(
        self, bakery_ids: Sequence[int], limit: int
    ) -> Sequence[Row[tuple[object, ...]]]:
        """The `limit` newest orders of each bakery, by bakery then newest first, in SQL."""
        if not bakery_ids or limit <= 0:
            return []
        if self.dialect == "postgresql":
            return await self._all(_newest_orders_lateral(bakery_ids, limit))
        if len(bakery_ids) <= SQLITE_MAX_UNION_TERMS:
            return await self._all(_newest_orders_union(bakery_ids, limit))
        return await self._all(_newest_orders_window(bakery_ids, limit))

    async def order_counts(self, bakery_ids: Sequence[int]) -> Sequence[Row[tuple[object, ...]]]:
        statement = (
            select(orders.c.bakery_id, func.count().label("count"))
            .where(orders.c.bakery_id.in_(bakery_ids))
            .group_by(orders.c.bakery_id)
        )
        return await self._all(statement)

    # ---- people, suppliers, products, photos ----

    async def managers(self, bakery_ids: Sequence[int]) -> Sequence[Row[tuple[object, ...]]]:
        statement = (
            select(bakers)
            .where(bakers.c.bakery_id.in_(bakery_ids), bakers.c.is_manager.is_(True))
            .order_by(bakers.c.id)
        )
        return await self._all(statement)

    async def baker_by_last_name(self, last_name: str) -> Row[tuple[object, ...]] | None:
        statement = select(bakers).where(bakers.c.last_name == last_name).order_by(bakers.c.id)
        return await self._first(statement.limit(1))

    async def suppliers_of_bakeries(
        self, bakery_ids: Sequence[int]
    ) -> Sequence[Row[tuple[object, ...]]]:
        statement = (
            select(bakery_suppliers.c.bakery_id, *suppliers.c)
            .join(suppliers, suppliers.c.id == bakery_suppliers.c.supplier_id)
            .where(bakery_suppliers.c.bakery_id.in_(bakery_ids))
            .order_by(bakery_suppliers.c.bakery_id, suppliers.c.id)
        )
        return await self._all(statement)

    async def products(self) -> Sequence[Row[tuple[object, ...]]]:
        return await self._all(select(products).order_by(products.c.id))

    async def latest_photos(self, order_ids: Sequence[int]) -> Sequence[Row[tuple[object, ...]]]:
        latest = (
            select(func.max(photos.c.id))
            .where(photos.c.order_id.in_(order_ids))
            .group_by(photos.c.order_id)
            .scalar_subquery()
        )
        return await self._all(select(photos).where(photos.c.id.in_(latest)))

    async def photo(self, photo_id: int) -> Row[tuple[object, ...]] | None:
        return await self._first(select(photos).where(photos.c.id == photo_id))


def _newest_orders_union(bakery_ids: Sequence[int], limit: int) -> Any:
    # One indexed LIMIT probe per bakery, glued with UNION ALL: on SQLite this beats
    # ROW_NUMBER() OVER (PARTITION BY ...) by ~1.6x (`python -m benchmarks.sql_shapes`). No outer
    # ORDER BY (it costs a temp B-tree, ~40% of the time): SQLite runs each term as a co-routine and
    # emits its rows in the term's own order, which tests/db/test_reads.py pins down.
    per_bakery = [
        select(orders)
        .where(orders.c.bakery_id == bakery_id)
        .order_by(*NEWEST_FIRST)
        .limit(limit)
        .subquery()
        .select()
        for bakery_id in bakery_ids
    ]
    return per_bakery[0] if len(per_bakery) == 1 else union_all(*per_bakery)


def _newest_orders_window(bakery_ids: Sequence[int], limit: int) -> Select[tuple[object, ...]]:
    # Portable, one statement for any number of bakeries; slower than the per-bakery probes.
    rank = func.row_number().over(partition_by=orders.c.bakery_id, order_by=NEWEST_FIRST)
    ranked = select(orders, rank.label("rank")).where(orders.c.bakery_id.in_(bakery_ids)).subquery()
    columns = [ranked.c[column.name] for column in orders.c]
    return (
        select(*columns)
        .where(ranked.c.rank <= limit)
        .order_by(ranked.c.bakery_id, ranked.c.created_at.desc(), ranked.c.id.desc())
    )


def _newest_orders_lateral(bakery_ids: Sequence[int], limit: int) -> Select[tuple[object, ...]]:
    # PostgreSQL: one array parameter, and a LATERAL index probe per bakery.
    ids = (
        func.unnest(bindparam("bakery_ids", list(bakery_ids), type_=postgresql.ARRAY(Integer)))
        .table_valued("id")
        .render_derived(name="parent")
    )
    newest = (
        select(orders)
        .where(orders.c.bakery_id == ids.c.id)
        .order_by(*NEWEST_FIRST)
        .limit(limit)
        .lateral("newest")
    )
    return (
        select(newest)
        .select_from(ids)
        .join(newest, true())
        .order_by(newest.c.bakery_id, newest.c.created_at.desc(), newest.c.id.desc())
    )
