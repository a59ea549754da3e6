"""`schema.rows`: reading rows by position, and constructors without keyword arguments."""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field

import pytest

from schema.rows import columns, constructor
from schema.types import Bakery, CakeOrder

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
