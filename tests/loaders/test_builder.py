"""The distribution rules of the batch builder, one rule per test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from loaders.builder import TooManyResults, default_key, distribute, from_sources


@dataclass(frozen=True)
class Parent:
    pk: int


@dataclass(frozen=True)
class Child:
    pk: int
    parent_pk: int


PARENTS = [Parent(1), Parent(2), Parent(3)]


def by_parent(child: Child) -> int:
    return child.parent_pk


def test_list_field_gives_each_included_parent_its_children_and_empty_list_when_none():
    children = [Child(10, 1), Child(11, 1), Child(12, 3)]
    outcome = from_sources(PARENTS).with_results(children, key=by_parent)
    values = distribute(outcome, PARENTS, default_key, many=True, field_name="kids")
    assert values == [[Child(10, 1), Child(11, 1)], [], [Child(12, 3)]]


def test_single_field_gives_the_child_or_null():
    outcome = from_sources(PARENTS).with_results([Child(10, 2)], key=by_parent)
    values = distribute(outcome, PARENTS, default_key, many=False, field_name="kid")
    assert values == [None, Child(10, 2), None]


def test_single_field_with_two_children_is_an_error_on_that_parent_only():
    children = [Child(10, 1), Child(11, 1), Child(12, 2)]
    outcome = from_sources(PARENTS).with_results(children, key=by_parent)
    values = distribute(outcome, PARENTS, default_key, many=False, field_name="Bakery.manager")
    assert isinstance(values[0], TooManyResults)
    assert "Bakery.manager" in str(values[0]) and "2 were found" in str(values[0])
    assert values[1:] == [Child(12, 2), None]


def test_parent_left_out_of_the_sources_gets_null_even_for_a_list_field():
    outcome = from_sources(PARENTS[:2]).with_results([Child(12, 3)], key=by_parent)
    values = distribute(outcome, PARENTS, default_key, many=True, field_name="kids")
    assert values == [[], [], None]


def test_many_to_many_child_is_one_object_under_each_parent():
    shared = Child(10, 0)
    outcome = from_sources(PARENTS).with_results([shared], keys=lambda child: (1, 3))
    values = distribute(outcome, PARENTS, default_key, many=True, field_name="kids")
    assert values[0][0] is shared and values[2][0] is shared
    assert values[1] == []


def test_pairs_keep_each_parents_order():
    a, b = Child(1, 0), Child(2, 0)
    outcome = from_sources(PARENTS).with_pairs([(1, b), (1, a), (2, a)])
    values = distribute(outcome, PARENTS, default_key, many=True, field_name="kids")
    assert values == [[b, a], [a], []]


def test_mapping_by_parent_key_or_by_parent_and_missing_means_null():
    values = distribute(
        {1: "one", Parent(2): "two"}, PARENTS, default_key, many=False, field_name="f"
    )
    assert values == ["one", "two", None]


def test_mapping_values_may_be_errors_for_one_parent():
    error = ValueError("no")
    values = distribute({1: error, 2: "ok"}, PARENTS, default_key, many=False, field_name="f")
    assert values[0] is error and values[1] == "ok"


def test_with_results_takes_exactly_one_key_function():
    with pytest.raises(TypeError, match="exactly one"):
        from_sources(PARENTS).with_results([])
    with pytest.raises(TypeError, match="exactly one"):
        from_sources(PARENTS).with_results([], key=by_parent, keys=lambda c: ())


def test_a_batch_function_returning_something_else_is_a_clear_error():
    with pytest.raises(TypeError, match="must return from_sources"):
        distribute([1, 2, 3], PARENTS, default_key, many=True, field_name="kids")  # type: ignore[arg-type]


def test_default_key_prefers_pk_then_id():
    @dataclass
    class WithId:
        id: str

    assert default_key(Parent(5)) == 5
    assert default_key(WithId("x")) == "x"


def test_a_key_may_name_the_attribute_that_holds_the_parents_key():
    children = [Child(10, 1), Child(11, 3), Child(12, 1)]
    outcome = from_sources(PARENTS).with_results(children, key="parent_pk")
    values = distribute(outcome, PARENTS, default_key, many=True, field_name="kids")
    assert values == [[Child(10, 1), Child(12, 1)], [], [Child(11, 3)]]


class Grouping:
    """Results that group themselves (as the schema's row-backed sequences do)."""

    def __init__(self, children: list[Child], willing: bool = True) -> None:
        self.children = children
        self.willing = willing
        self.asked: list[str] = []

    def __iter__(self) -> Iterator[Child]:
        return iter(self.children)

    def partition(self, attribute: str) -> dict[int, tuple[Child, ...]] | None:
        self.asked.append(attribute)
        if not self.willing:
            return None
        groups: dict[int, tuple[Child, ...]] = {}
        for child in self.children:
            groups[getattr(child, attribute)] = (*groups.get(child.parent_pk, ()), child)
        return groups


def test_results_that_group_themselves_are_grouped_so_and_handed_out_as_they_are():
    children = Grouping([Child(10, 1), Child(11, 3), Child(12, 1)])
    outcome = from_sources(PARENTS).with_results(children, key="parent_pk")
    values = distribute(outcome, PARENTS, default_key, many=True, field_name="kids")
    assert children.asked == ["parent_pk"]
    # the parents' own sequences, not lists made of them; [] for a parent with none
    assert values == [(Child(10, 1), Child(12, 1)), [], (Child(11, 3),)]
    single = distribute(outcome, PARENTS, default_key, many=False, field_name="kid")
    assert isinstance(single[0], TooManyResults) and single[2] == Child(11, 3)


def test_results_that_decline_to_group_are_read_item_by_item():
    children = Grouping([Child(10, 1), Child(11, 3)], willing=False)
    outcome = from_sources(PARENTS).with_results(children, key="parent_pk")
    values = distribute(outcome, PARENTS, default_key, many=True, field_name="kids")
    assert children.asked == ["parent_pk"]
    assert values == [[Child(10, 1)], [], [Child(11, 3)]]
