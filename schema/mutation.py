"""Root mutation fields."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from app.db import writes
from schema.access import WRITE, requires
from schema.directives import DATABASE
from schema.ids import order_not_found, require_pk
from schema.types import CakeOrder


@strawberry.type
class OrderMutation:
    @strawberry.mutation(
        description="Adds to an order's total. Atomic in the database: "
        "concurrent calls never lose an update.",
        directives=[*requires(WRITE), DATABASE],
    )
    async def add_money(
        self, info: Info, order_id: strawberry.ID, dollars_to_add: int
    ) -> CakeOrder:
        pk = require_pk(order_id, "orderId")
        try:
            row = await writes.add_money(info.context.engine, pk, dollars_to_add)
        except writes.ConstraintViolation as error:
            raise GraphQLError(str(error), extensions={"code": "BAD_USER_INPUT"}) from error
        if row is None:
            raise order_not_found(order_id)
        return CakeOrder.from_row(row)
