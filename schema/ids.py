"""Global ids are the row's integer key as a string of ASCII digits; anything else (`" 1"`,
`"+1"`, `"1_000"`, other scripts' digits) simply matches nothing."""

from __future__ import annotations

from graphql import GraphQLError

from app.bulk.entities import parse_id


def parse_pk(value: str | int) -> int | None:
    """The key `value` names: ASCII digits (or an int) from 1 to INT_MAX, else None. Past INT_MAX
    no row has that key, and the databases refuse it as a parameter."""
    return parse_id(value)


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
