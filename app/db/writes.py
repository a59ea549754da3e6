"""Single-row writes that must be atomic in the database, not in Python."""

from __future__ import annotations

from sqlalchemy import Row, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.reads import orders


class ConstraintViolation(Exception):
    """A write the database refused because it would break a rule of the data."""


async def add_money(
    engine: AsyncEngine, order_id: int, dollars: int
) -> Row[tuple[object, ...]] | None:
    """Add `dollars` to an order's total in one UPDATE, so concurrent calls never lose an update.

    Returns the updated row, or None when there is no such order.
    """
    statement = (
        update(orders)
        .where(orders.c.id == order_id)
        .values(current_total=orders.c.current_total + dollars)
        .returning(*orders.c)
    )
    try:
        async with engine.begin() as conn:
            return (await conn.execute(statement)).first()
    except IntegrityError as error:
        raise ConstraintViolation(
            f"adding {dollars} would make the total of order {order_id} negative"
        ) from error
