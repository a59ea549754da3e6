"""Ids parse strictly: ASCII digits within the key range, nothing Python's `int` would also take
(spaces, signs, underscores, other scripts' digits, more digits than `int` converts)."""

from __future__ import annotations

import pytest
from graphql import GraphQLError

from schema.ids import parse_pk, require_pk
from tests.helpers import run

LOOSE = [" 1", "1 ", "+1", "1_000", "१२३", "٣", "\uff11", "0x1", "1.0", "9" * 5000, ""]


@pytest.mark.parametrize("raw", LOOSE)
def test_only_ascii_digits_are_an_id(raw):
    assert parse_pk(raw) is None
    with pytest.raises(GraphQLError) as refused:
        require_pk(raw, "orderId")
    assert refused.value.extensions == {"code": "BAD_USER_INPUT"}
    assert refused.value.message.startswith("orderId must be the id of an existing record")


def test_well_formed_ids_parse():
    assert [parse_pk(v) for v in ("1", "0001", "2147483647", 7)] == [1, 1, 2147483647, 7]
    assert [parse_pk(v) for v in ("0", "2147483648", 0, -1, True)] == [None] * 5


ADD = "mutation($id: ID!) { addMoney(orderId: $id, dollarsToAdd: 1) { currentTotal } }"


async def test_a_loose_id_finds_nothing_and_changes_nothing(engine):
    read = await run(engine, '{ a: bakery(id: " 1") { id } b: bakery(id: "+1") { id } }')
    assert read.errors == []
    assert read.data == {"a": None, "b": None}
    before = await run(engine, '{ cakeOrder(id: "1") { currentTotal } }')
    for raw in ("+1", "1_0", "\u0661"):
        outcome = await run(engine, ADD, {"id": raw})
        [error] = outcome.errors
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["message"] == f"orderId must be the id of an existing record, got {raw!r}"
    assert await run(engine, '{ cakeOrder(id: "1") { currentTotal } }') == before
