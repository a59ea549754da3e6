"""Global ids are the row's integer key as a string; anything else simply matches nothing."""

from __future__ import annotations

from graphql import GraphQLError

from app.db.models import INT_MAX


def parse_pk(value: str | int) -> int | None:
    try:
        pk = int(value)
    except (TypeError, ValueError):
        return None
    # Past INT_MAX no row has that key, and the databases refuse it as a parameter.
    return pk if 0 < pk <= INT_MAX else None


def order_not_found(order_id: str | int) -> GraphQLError:
    return GraphQLError(f"no cake order has id {order_id}", extensions={"code": "NOT_FOUND"})


def require_pk(value: str | int, argument: str) -> int:
    pk = parse_pk(value)
    if pk is None:
        raise GraphQLError(
            f"{argument} must be the id of an existing record, got {value!r}",
            extensions={"code": "BAD_USER_INPUT"},
        )
    return pk
