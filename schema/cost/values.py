"""Argument values of a document as Python, reading the variables (and noting which were read)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    BooleanValueNode,
    FieldNode,
    IntValueNode,
    ListValueNode,
    NullValueNode,
    ObjectValueNode,
    ValueNode,
    VariableNode,
)

MISSING: Any = object()
# A variable's value when costing a document before its variables are known (`Values.unknown`).
UNKNOWN: Any = object()


class Values:
    """Argument values of a document read as Python, with the variables read noted."""

    def __init__(
        self, variables: Mapping[str, Any], defaults: Mapping[str, Any], *, unknown: bool = False
    ) -> None:
        self.variables = variables
        self.defaults = defaults
        self.unknown = unknown  # every variable reads as UNKNOWN
        self.reads: set[str] = set()

    def argument(self, node: FieldNode, path: tuple[str, ...], variables: bool = True) -> Any:
        value: Any = next(
            (a.value for a in node.arguments or () if a.name.value == path[0]), MISSING
        )
        for part in path[1:]:
            if isinstance(value, VariableNode) and not variables:
                return MISSING
            if isinstance(value, ObjectValueNode):
                value = next((f.value for f in value.fields if f.name.value == part), MISSING)
            elif isinstance(value, VariableNode | Mapping):
                whole = self.literal(value) if isinstance(value, VariableNode) else value
                value = whole.get(part, MISSING) if isinstance(whole, Mapping) else MISSING
            else:
                return MISSING
        if isinstance(value, VariableNode) and not variables:
            return MISSING
        return self.literal(value) if isinstance(value, ValueNode) else value

    def literal(self, node: ValueNode) -> Any:
        """A value node as Python, reading variables (and noting which)."""
        if isinstance(node, VariableNode):
            name = node.name.value
            self.reads.add(name)
            if self.unknown:
                return UNKNOWN
            if name in self.variables:
                return self.variables[name]
            # Not given and no default: the argument counts as left out (its default applies).
            return self.defaults.get(name, MISSING)
        if isinstance(node, IntValueNode):
            return int(node.value)
        if isinstance(node, BooleanValueNode):
            return node.value
        if isinstance(node, NullValueNode):
            return None
        if isinstance(node, ListValueNode):
            return [MISSING] * len(node.values)  # only its length matters here
        if isinstance(node, ObjectValueNode):
            return {f.name.value: f.value for f in node.fields}
        return MISSING
