"""Field arguments, coerced once per request rather than once per parent.

graphql-core coerces a field's arguments for every object it resolves the field on; within one
request they are the same every time (they depend on the document and the variables only), so
they are coerced once, with graphql-core's `get_argument_values` - and when that fails, the same
error is reported for every parent, as graphql-core would. Arguments without variables were
already coerced when the plan was made.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import strawberry
from graphql.execution.values import VariableValues, get_argument_values
from strawberry.types.arguments import convert_arguments

from schema.compiled.model import FieldPlan


class Arguments:
    __slots__ = ("cache", "schema", "variable_values")

    def __init__(self, schema: strawberry.Schema, variable_values: VariableValues) -> None:
        self.schema = schema
        self.variable_values = variable_values
        self.cache: dict[FieldPlan, dict[str, Any] | Exception] = {}

    def graphql(self, field: FieldPlan) -> dict[str, Any]:
        """The field's coerced GraphQL arguments; raises what coercing them raises."""
        if field.static_args is not None:
            return dict(field.static_args)
        if field.static_args_error is not None:
            raise field.static_args_error
        if not field.has_arguments:
            return {}
        cached = self.cache.get(field)
        if cached is None:
            try:
                cached = get_argument_values(
                    field.definition, field.first.node, self.variable_values
                )
            except Exception as error:
                cached = error
            self.cache[field] = cached
        if isinstance(cached, Exception):
            raise cached
        return dict(cached)

    def all_valid(self, fields: Iterable[FieldPlan]) -> bool:
        for field in fields:
            if field.static_args is None and field.has_arguments:
                try:
                    self.graphql(field)
                except Exception:
                    return False
        return True

    def python(self, field: FieldPlan, info: Any) -> dict[str, Any]:
        """Strawberry's conversion of the arguments, as its resolver wrapper would do it."""
        strawberry_field = field.strawberry_field
        assert strawberry_field is not None
        converter = self.schema.schema_converter
        return convert_arguments(
            self.graphql(field),
            strawberry_field.arguments,
            scalar_registry=converter.scalar_registry,
            config=self.schema.config,
            info=info,
        )
