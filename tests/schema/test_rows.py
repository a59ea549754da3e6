"""`schema.rows`: reading rows by position, constructors without keyword arguments, and objects
built from rows only when read."""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field

import pytest

from schema.rows import RowType, columns, constructor
from schema.types import ORDER_ROWS, Bakery, CakeOrder

Row = namedtuple("Row", "id external_id name")


def test_columns_are_read_by_name_in_the_order_asked():
    rows = [Row(1, "BKR-1", "One"), Row(2, None, "Two")]
    assert list(columns(rows, "name", "id")) == [("One", 1), ("Two", 2)]
    assert list(columns(rows, "id")) == [(1,), (2,)]
    assert list(columns([], "id")) == []


def test_a_constructor_builds_what_the_dataclass_would():
    make = constructor(Bakery, "pk", "id", "external_id", "name", "region")
    assert make(1, "1", None, "One", "NORTH_EAST") == Bakery(
        pk=1, id="1", external_id=None, name="One", region="NORTH_EAST"
    )


def test_a_constructor_refuses_to_skip_a_field_or_post_init():
    with pytest.raises(TypeError, match="needs exactly"):
        constructor(CakeOrder, "pk", "id")

    @dataclass
    class Checked:
        value: int
        seen: list[int] = field(default_factory=list)

        def __post_init__(self) -> None:
            self.seen.append(self.value)

    with pytest.raises(TypeError):
        constructor(Checked, "value", "seen")


# ---- RowType and Rows: objects built from rows when first read ----

OrderRow = namedtuple(
    "OrderRow",
    "note created_at status current_total written_phrase external_id bakery_id id",
)


def order_rows() -> list[OrderRow]:
    return [
        OrderRow("", None, None, 5, f"phrase {pk}", None, bakery, pk)
        for pk, bakery in ((1, 7), (2, 8), (3, 7), (4, 9), (5, 7))
    ]


def test_objects_are_built_once_when_first_read_and_match_the_declaration():
    rows = ORDER_ROWS.rows(order_rows())
    assert rows._objects is None and len(rows) == 5  # the length reads no object
    first = rows[0]
    assert first == CakeOrder(
        pk=1, bakery_pk=7, id="1", external_id=None, written_phrase="phrase 1",
        current_total=5, status=None, created_at=None,
    )  # fmt: skip
    assert next(iter(rows)) is first and rows.objects()[0] is first
    assert rows == [*rows.objects()] and rows[1:3] == rows.objects()[1:3]


def test_one_object_from_attributes():
    row = order_rows()[3]
    assert CakeOrder.from_row(row) == ORDER_ROWS.rows([row])[0]


def test_a_missing_column_fails_when_the_rows_are_given_not_when_read():
    Short = namedtuple("Short", "id bakery_id")
    with pytest.raises(ValueError):
        ORDER_ROWS.rows([Short(1, 2)])
    assert len(ORDER_ROWS.rows([])) == 0 and ORDER_ROWS.rows([]).objects() == []


def test_partition_groups_the_rows_by_a_plain_column_in_order_without_objects():
    rows = ORDER_ROWS.rows(order_rows())
    groups = rows.partition("bakery_pk")
    assert groups is not None and list(groups) == [7, 8, 9]
    assert [order.pk for order in groups[7]] == [1, 3, 5]
    assert [order.pk for order in groups[9]] == [4]
    assert rows._objects is None


def test_partition_declines_a_converted_attribute_an_unknown_one_and_built_objects():
    rows = ORDER_ROWS.rows(order_rows())
    assert rows.partition("id") is None  # str(column): not the column's value
    assert rows.partition("nothing") is None
    rows.objects()
    # the readers that saw these objects must see the same ones under their parents
    assert rows.partition("bakery_pk") is None


def test_a_row_type_declares_every_init_field():
    with pytest.raises(TypeError, match="needs exactly"):
        RowType(CakeOrder, pk="id", id=("id", str))


def test_partition_merges_the_runs_of_a_key_that_comes_back():
    rows = order_rows()  # bakeries 7, 8, 7, 9, 7: three runs of 7
    groups = ORDER_ROWS.rows(rows[1:2] + rows[:1] + rows[2:]).partition("bakery_pk")
    assert groups is not None
    assert {key: [o.pk for o in group] for key, group in groups.items()} == {
        8: [2],
        7: [1, 3, 5],
        9: [4],
    }
