"""The cost directives of a schema, read once into a `FieldCost` per (type, field)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
    is_composite_type,
)

from schema.directives import Cost, ListSize


@dataclass(frozen=True, slots=True)
class FieldCost:
    """The cost directives of one field, read once from the schema."""

    weight: int
    type_weight: int
    is_list: bool
    child_type: str | None  # the object type of a composite field
    assumed_size: int | None = None
    slicing: tuple[tuple[str, ...], ...] = ()
    defaults: tuple[Any, ...] = ()  # the schema's default of each slicing argument
    sized_fields: frozenset[str] = frozenset()
    counts_records: bool = False  # sliced by a list argument: a write charged per record


class CostModel:
    """The cost directives of a schema, as `FieldCost` per (type, field)."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema
        self.fields: dict[tuple[str, str], FieldCost] = {}
        for type_ in schema.type_map.values():
            if isinstance(type_, GraphQLObjectType) and not type_.name.startswith("__"):
                for name, graphql_field in type_.fields.items():
                    self.fields[type_.name, name] = _field_cost(graphql_field)


def _directives(extensions: Mapping[str, Any] | None) -> list[object]:
    definition = (extensions or {}).get("strawberry-definition")
    return list(getattr(definition, "directives", None) or ())


def _field_cost(graphql_field: Any) -> FieldCost:
    cost = next((d for d in _directives(graphql_field.extensions) if isinstance(d, Cost)), None)
    size = next((d for d in _directives(graphql_field.extensions) if isinstance(d, ListSize)), None)
    wrapped = graphql_field.type
    is_list = False
    while isinstance(wrapped, GraphQLNonNull | GraphQLList):
        is_list = is_list or isinstance(wrapped, GraphQLList)
        wrapped = wrapped.of_type
    named = get_named_type(wrapped)
    type_cost = next((d for d in _directives(named.extensions) if isinstance(d, Cost)), None)
    type_weight = type_cost.weight if type_cost else (1 if is_composite_type(named) else 0)
    slicing: list[tuple[str, ...]] = []
    defaults: list[Any] = []
    counts_records = False
    for path in _given(size.slicing_arguments if size else None):
        parts = tuple(path.split("."))
        argument = graphql_field.args[parts[0]]
        slicing.append(parts)
        defaults.append(argument.default_value if len(parts) == 1 else None)
        argument_type = argument.type
        for part in parts[1:]:
            argument_type = get_named_type(argument_type).fields[part].type
        while isinstance(argument_type, GraphQLNonNull):
            argument_type = argument_type.of_type
        counts_records = counts_records or isinstance(argument_type, GraphQLList)
    assumed = size.assumed_size if size is not None else None
    return FieldCost(
        weight=cost.weight if cost else 0,
        type_weight=type_weight,
        is_list=is_list,
        child_type=named.name if is_composite_type(named) else None,
        assumed_size=assumed if isinstance(assumed, int) else None,
        slicing=tuple(slicing),
        defaults=tuple(defaults),
        sized_fields=frozenset(_given(size.sized_fields if size else None)),
        counts_records=counts_records,
    )


def _given(values: Any) -> list[str]:
    return list(values) if isinstance(values, list) else []
