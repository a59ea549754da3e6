"""Placing orders against product stock: all or nothing, and stock never below zero.

The check and the decrement happen in one transaction with the product rows locked: `SELECT ...
FOR UPDATE` on PostgreSQL, the write lock taken at BEGIN (IMMEDIATE) on SQLite. Concurrent
requests for the last units therefore queue, and each sees the stock the previous one left.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.bulk import sql
from app.bulk.entities import CAKE_ORDERS, InvalidValue, convert, parse_id
from app.bulk.model import ErrorCode, RecordError
from app.db.models import INT_MAX, OrderStatus
from app.db.reads import bakeries, orders, products
from app.db.transactions import write_connection


@dataclass(frozen=True, slots=True)
class OrderLine:
    bakery_id: str | int
    product_id: str | int
    quantity: int
    written_phrase: str


@dataclass(frozen=True, slots=True)
class LineError:
    # None when the request as a whole is at fault (e.g. too many lines).
    index: int | None
    error: RecordError


class OrdersRefused(Exception):
    """Nothing was written; `errors` says why, line by line."""

    def __init__(self, errors: Sequence[LineError]) -> None:
        self.errors = tuple(errors)
        first = self.errors[0]
        where = f"order {first.index}: " if first.index is not None else ""
        more = f" (and {len(self.errors) - 1} more problems)" if len(self.errors) > 1 else ""
        super().__init__(f"no order was placed: {where}{first.error.message}{more}")

    @property
    def code(self) -> str:
        return self.errors[0].error.code


@dataclass(slots=True)
class _Line:
    index: int
    bakery_id: int | None
    product_id: int | None
    quantity: int
    written_phrase: str


async def place_orders(
    engine: AsyncEngine, lines: Sequence[OrderLine], *, max_lines: int
) -> list[dict[str, Any]]:
    """Creates one order per line and takes its quantity from stock; returns the orders' rows."""
    if len(lines) > max_lines:
        error = RecordError(
            ErrorCode.BATCH_TOO_LARGE,
            f"at most {max_lines} orders per request, got {len(lines)}",
        )
        raise OrdersRefused([LineError(None, error)])
    if not lines:
        return []
    checked, errors = _check_lines(lines)
    if errors:
        raise OrdersRefused(errors)
    async with write_connection(engine) as conn, conn.begin():
        errors = await _check_stock(conn, checked)
        if errors:
            raise OrdersRefused(errors)
        return await _write(conn, checked)


def _check_lines(lines: Sequence[OrderLine]) -> tuple[list[_Line], list[LineError]]:
    checked: list[_Line] = []
    errors: list[LineError] = []

    def fail(index: int, code: str, message: str, field: str) -> None:
        errors.append(LineError(index, RecordError(code, message, field)))

    phrase_rule = CAKE_ORDERS.field("writtenPhrase")
    assert phrase_rule is not None
    for index, line in enumerate(lines):
        bakery_id, product_id = parse_id(line.bakery_id), parse_id(line.product_id)
        if bakery_id is None:
            fail(
                index,
                ErrorCode.REFERENCE_NOT_FOUND,
                f"no bakery has id {line.bakery_id!r}",
                "bakeryId",
            )
        if product_id is None:
            fail(
                index,
                ErrorCode.REFERENCE_NOT_FOUND,
                f"no product has id {line.product_id!r}",
                "productId",
            )
        if isinstance(line.quantity, bool) or not isinstance(line.quantity, int):
            fail(index, ErrorCode.INVALID_VALUE, "quantity must be a whole number", "quantity")
        elif not 1 <= line.quantity <= INT_MAX:
            fail(
                index,
                ErrorCode.INVALID_VALUE,
                f"quantity must be at least 1, got {line.quantity}",
                "quantity",
            )
        try:
            convert(phrase_rule, line.written_phrase)
        except InvalidValue as problem:
            fail(index, problem.code, problem.message, "writtenPhrase")
        checked.append(_Line(index, bakery_id, product_id, line.quantity, line.written_phrase))
    return checked, errors


async def _check_stock(conn: AsyncConnection, lines: Sequence[_Line]) -> list[LineError]:
    errors: list[LineError] = []
    known_bakeries = await sql.existing_ids(
        conn, bakeries, {line.bakery_id for line in lines if line.bakery_id}
    )
    wanted = Counter[int]()
    for line in lines:
        assert line.product_id is not None
        wanted[line.product_id] += line.quantity
    # Locked in id order, so two requests for the same products can never deadlock.
    locked = (
        select(products.c.id, products.c.name, products.c.stock)
        .where(products.c.id.in_(sorted(wanted)))
        .order_by(products.c.id)
        .with_for_update()
    )
    stock = {row.id: row for row in await conn.execute(locked)}
    for line in lines:
        if line.bakery_id not in known_bakeries:
            errors.append(
                LineError(
                    line.index,
                    RecordError(
                        ErrorCode.REFERENCE_NOT_FOUND,
                        f"no bakery has id {line.bakery_id}",
                        "bakeryId",
                    ),
                )
            )
        product = stock.get(line.product_id) if line.product_id else None
        if product is None:
            errors.append(
                LineError(
                    line.index,
                    RecordError(
                        ErrorCode.REFERENCE_NOT_FOUND,
                        f"no product has id {line.product_id}",
                        "productId",
                    ),
                )
            )
        elif product.stock < wanted[product.id]:
            message = f"{product.name}: {wanted[product.id]} ordered, {product.stock} in stock"
            errors.append(
                LineError(
                    line.index, RecordError(ErrorCode.INSUFFICIENT_STOCK, message, "quantity")
                )
            )
    return errors


async def _write(conn: AsyncConnection, lines: Sequence[_Line]) -> list[dict[str, Any]]:
    taken = Counter[int]()
    for line in lines:
        assert line.product_id is not None
        taken[line.product_id] += line.quantity
    decrement = case(dict(taken), value=products.c.id)
    try:
        await conn.execute(
            update(products)
            .where(products.c.id.in_(sorted(taken)))
            .values(stock=products.c.stock - decrement)
        )
    except IntegrityError as error:  # the CHECK (stock >= 0): only if the lock were bypassed
        raise OrdersRefused(
            [LineError(None, RecordError(ErrorCode.INSUFFICIENT_STOCK, "not enough stock"))]
        ) from error
    rows = await sql.insert_rows(
        conn,
        orders,
        [
            {
                "bakery_id": line.bakery_id,
                "written_phrase": line.written_phrase,
                "current_total": 0,
                "status": OrderStatus.PLACED,
                "external_id": None,
            }
            for line in lines
        ],
    )
    return [CAKE_ORDERS.row_data(row) for row in rows]
