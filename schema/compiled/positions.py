"""Positions in the response, and the errors recorded at them.

A position is the tuple of keys and list indexes that lead to a value (`("bakeries", 3, "orders")`),
what graphql-core's `Path` holds as a linked list. `Collected` is graphql-core's
`CollectedErrors`: an error is recorded with the position it nulled, and none is recorded inside a
position already nulled (the part of the response it would belong to is gone).
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from graphql.pyutils import Path

from schema.compiled.model import ObjectPlan, TypeRef

Position = tuple[str | int, ...]


class Collected:
    __slots__ = ("errors", "events", "nulled")

    def __init__(self) -> None:
        self.errors: list[GraphQLError] = []
        self.nulled: set[Position] = set()
        # Errors met so far, recorded or not: a part of the response that met none is the same
        # wherever it appears (see sharing.py).
        self.events = 0

    @property
    def root_nulled(self) -> bool:
        return () in self.nulled

    def add(self, error: GraphQLError, position: Position) -> None:
        """Record `error`, which nulled `position`, unless that part of the response is gone."""
        self.events += 1
        if self.is_nulled(position):
            return
        self.nulled.add(position)
        self.errors.append(error)

    def is_nulled(self, position: Position) -> bool:
        nulled = self.nulled
        if not nulled:
            return False
        if () in nulled:
            return True
        return any(position[:end] in nulled for end in range(len(position), 0, -1))

    def propagate(
        self, error: GraphQLError, position: Position, data: dict[str, Any], root: ObjectPlan
    ) -> None:
        """The object at `position` failed a non-null field: null the nearest nullable position
        at or above it in `data` (the whole response when there is none), and record why."""
        self.events += 1
        if self.is_nulled(position):
            return
        for prefix, ref in reversed(type_chain(root, position)):
            if not ref.non_null:
                container: Any = data
                for key in prefix[:-1]:
                    container = container[key]
                    if container is None:
                        # A part shared with another position was nulled there first, by the
                        # same error: the value is already gone (see sharing.py).
                        break
                else:
                    container[prefix[-1]] = None
                self.add(error, prefix)
                return
        self.add(error, ())


def type_chain(root: ObjectPlan, position: Position) -> list[tuple[Position, TypeRef]]:
    """For each prefix of `position` (ending in a field key or a list index), its declared type."""
    chain: list[tuple[Position, TypeRef]] = []
    plan = root
    index, end = 0, len(position)
    while index < end:
        ref = plan.by_key[str(position[index])].type
        index += 1
        chain.append((position[:index], ref))
        while ref.item is not None and index < end and isinstance(position[index], int):
            ref = ref.item
            index += 1
            chain.append((position[:index], ref))
        if ref.object is not None:
            plan = ref.object
    return chain


def graphql_path(root: ObjectPlan, position: Position) -> Path:
    """graphql-core's `Path` (with the type name of each field's parent) for a position."""
    path: Path | None = None
    plan = root
    index, end = 0, len(position)
    while index < end:
        key = str(position[index])
        path = Path(path, key, plan.name)
        ref = plan.by_key[key].type
        index += 1
        while ref.item is not None and index < end and isinstance(position[index], int):
            path = path.add_key(position[index], None)
            ref = ref.item
            index += 1
        if ref.object is not None:
            plan = ref.object
    assert path is not None
    return path
