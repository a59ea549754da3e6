"""Single-row writes that must be atomic in the database, not in Python."""

from __future__ import annotations

from sqlalchemy import BigInteger, Row, cast, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.models import INT_MAX
from app.db.reads import orders
from app.db.transactions import write_connection

# `current_total` is an `Integer` column and a GraphQL Int.
TOTAL_MAX = INT_MAX


class ConstraintViolation(Exception):
    """A write the database refused because it would break a rule of the data."""


async def add_money(
    engine: AsyncEngine, order_id: int, dollars: int
) -> Row[tuple[object, ...]] | None:
    """Add `dollars` to an order's total in one UPDATE, so concurrent calls never lose an update.

    Returns the updated row, or None when there is no such order. A total below zero or above
    `TOTAL_MAX` is refused (ConstraintViolation) and nothing changes.
    """
    # Summed as BIGINT: a 32-bit sum would overflow in PostgreSQL before it could be compared.
    new_total = cast(orders.c.current_total, BigInteger) + literal(dollars, BigInteger)
    statement = (
        update(orders)
        .where(orders.c.id == order_id, new_total <= TOTAL_MAX)
        .values(current_total=new_total)
        .returning(*orders.c)
    )
    try:
        async with write_connection(engine) as conn, conn.begin():
            row = (await conn.execute(statement)).first()
            if row is not None:
                return row
            # Nothing updated: no such order, or the total would pass TOTAL_MAX (asked only then).
            total = select(orders.c.current_total).where(orders.c.id == order_id)
            current = (await conn.execute(total)).scalar_one_or_none()
    except IntegrityError as error:
        raise ConstraintViolation(
            f"adding {dollars} would make the total of order {order_id} negative"
        ) from error
    if current is None:
        return None
    raise ConstraintViolation(
        f"adding {dollars} would make the total of order {order_id} larger than {TOTAL_MAX} "
        f"(it is {current})"
    )
