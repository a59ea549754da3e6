"""Set-based statements: one statement per kind of write, whatever the number of records.

A page bounds the bind parameters of one statement (SQLite and asyncpg both stop near 32,766), so a
batch within the default limit of 200 records is always one statement per kind.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Row, Table, case, delete, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

PAGE = 1000
T = TypeVar("T")


def pages(items: Sequence[T], size: int = PAGE) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def existing_ids(conn: AsyncConnection, table: Table, ids: Collection[int]) -> set[int]:
    found: set[int] = set()
    for page in pages(sorted(ids)):
        result = await conn.execute(select(table.c.id).where(table.c.id.in_(page)))
        found.update(result.scalars())
    return found


async def holders(
    conn: AsyncConnection, table: Table, column: str, values: Collection[Any]
) -> dict[Any, int]:
    """Which row holds each of `values` in a unique column: value -> id."""
    found: dict[Any, int] = {}
    for page in pages(sorted(values)):
        statement = select(table.c[column], table.c.id).where(table.c[column].in_(page))
        found.update((value, pk) for value, pk in await conn.execute(statement))
    return found


async def insert_rows(
    conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> list[Row[Any]]:
    """INSERT ... RETURNING, one statement per page; the rows come back in the order given."""
    if not rows:
        return []
    # On PostgreSQL SQLAlchemy orders RETURNING by a sentinel in one statement. On SQLite asking
    # for that would cost a statement per row; there a single INSERT hands out rowids in the order
    # it inserts, so sorting by id restores the order given.
    sqlite = conn.dialect.name == "sqlite"
    statement = insert(table).returning(*table.c, sort_by_parameter_order=not sqlite)
    returned: list[Row[Any]] = []
    for page in pages(rows):
        page_rows = list((await conn.execute(statement, list(page))).all())
        if sqlite:
            page_rows.sort(key=lambda row: row.id)
        returned.extend(page_rows)
    return returned


async def update_rows(
    conn: AsyncConnection, table: Table, changes: Mapping[int, Mapping[str, Any]]
) -> dict[int, Row[Any]]:
    """One UPDATE per page for records that each change their own columns to their own values:
    `SET col = CASE id WHEN :id THEN :value ... ELSE col END WHERE id IN (...)`.
    Returns the updated rows by id; an id missing from the answer had no row."""
    updated: dict[int, Row[Any]] = {}
    for page in pages(list(changes.items())):
        assignments = {}
        for column in table.c:
            whens = {
                pk: literal(values[column.name], column.type)
                for pk, values in page
                if column.name in values
            }
            if whens:
                assignments[column.name] = case(whens, value=table.c.id, else_=column)
        statement = (
            update(table)
            .where(table.c.id.in_([pk for pk, _ in page]))
            .values(assignments)
            .returning(*table.c)
        )
        updated.update((row.id, row) for row in await conn.execute(statement))
    return updated


async def delete_rows(
    conn: AsyncConnection, table: Table, ids: Sequence[int]
) -> dict[int, Row[Any]]:
    """DELETE ... RETURNING: the deleted rows by id."""
    deleted: dict[int, Row[Any]] = {}
    for page in pages(ids):
        statement = delete(table).where(table.c.id.in_(page)).returning(*table.c)
        deleted.update((row.id, row) for row in await conn.execute(statement))
    return deleted
