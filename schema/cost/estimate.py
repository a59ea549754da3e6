"""What an operation costs: the estimate made before it runs, and the actual cost after."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import FieldNode

from schema.cost.values import MISSING, Values


@dataclass(frozen=True, slots=True)
class OperationCost:
    """What one operation costs: `requested` before it runs, `actual` after (None: it did not run).

    The seam for what else a response reports about cost (a throttle status, say)."""

    requested: int
    actual: int | None = None

    def as_extension(self) -> dict[str, Any]:
        return {"requestedQueryCost": self.requested, "actualQueryCost": self.actual}


@dataclass(frozen=True, slots=True)
class ShapeField:
    """A field of the response whose actual cost is more than nothing (objects or a weight)."""

    key: str
    weight: int
    type_weight: int
    is_list: bool
    children: tuple[ShapeField, ...] | None  # None for a leaf
    # A write charged per record: its weight per record, and where the records are.
    records: tuple[int, FieldNode, tuple[tuple[str, ...], ...]] | None = None
    # Its children have no costly children of their own: an item costs a sum of lengths.
    flat: bool = False

    def charged(self, values: Values) -> int:
        """The weight actually charged: per record sent, for a write sized by its records."""
        if self.records is None:
            return self.weight
        per_record, node, paths = self.records
        sent = [values.argument(node, path) for path in paths]
        counts = [len(v) for v in sent if isinstance(v, list)]
        return per_record * max(counts) if counts else self.weight


@dataclass(frozen=True, slots=True)
class Estimate:
    requested: int
    shape: tuple[ShapeField, ...]

    def actual(
        self, data: Mapping[str, Any] | None, variables: Mapping[str, Any] | None = None
    ) -> int:
        """The cost from the response's real list sizes (and the records really sent); visits
        objects only where a list's items have costly children (a list of objects with scalars
        only costs its length)."""
        if data is None:
            return 0
        return _actual(self.shape, data, Values(variables or {}, {}), {})


# The cost of the part of a response under a field, by (field, value) identities: a part the
# executor shared between positions (schema/compiled/sharing.py) is walked once, and counted at
# each position. The response is alive during the walk, so identities are stable.
Known = dict[tuple[int, int], int]


def _actual(
    shape: tuple[ShapeField, ...], data: Mapping[str, Any], values: Values, known: Known
) -> int:
    total = 0
    for item in shape:
        value = data.get(item.key, MISSING)
        if value is MISSING:
            continue
        total += item.weight if item.records is None else item.charged(values)
        children = item.children
        if value is None or children is None:
            continue
        if not item.is_list and not children:
            total += item.type_weight
            continue
        key = (id(item), id(value))
        below = known.get(key)
        if below is None:
            below = known[key] = _below(item, children, value, values, known)
        total += below
    return total


def _below(
    item: ShapeField, children: tuple[ShapeField, ...], value: Any, values: Values, known: Known
) -> int:
    """The cost of an object or list of objects, `value`, under the field `item`."""
    if not item.is_list:
        return item.type_weight + _actual(children, value, values, known)
    total = 0
    if item.flat:  # the common page of objects: no call per item
        type_weight = item.type_weight
        for element in value:
            if element is None:
                continue
            total += type_weight
            for child in children:
                found = element.get(child.key, MISSING)
                if found is MISSING:
                    continue
                total += child.weight
                if found is not None and child.children is not None:
                    total += child.type_weight * (len(found) if child.is_list else 1)
    elif children:
        for element in value:
            if element is not None:
                total += item.type_weight + _actual(children, element, values, known)
    else:
        total += item.type_weight * len(value)
    return total
