"""Hypothesis strategies: random but valid GraphQL queries over the real schema.

The generator walks the schema itself (so new query fields are covered without touching this
file): fields with aliases, arguments as literals or variables, variables that do and do not
coerce, `@skip`/`@include` with literals and variables, inline fragments and named fragments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInputType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    get_named_type,
    is_leaf_type,
)
from hypothesis import strategies as st

from app.db.cursors import bakery_cursor, order_cursor
from app.db.seed import EPOCH

MAX_DEPTH = 4
MAX_SELECTIONS = 3

# Literal values that validate, per input type (the first ones most often: errors are the
# exception in real traffic, and a query whose every field fails compares little).
LITERALS: dict[str, list[str]] = {
    "Int": ["2", "1", "5", "2", "1", "0", "1000", "-1"],
    "ID": ['"1"', '"3"', '"2"', "4", '"99"', '"x"'],
    "String": ['"Baker"', '"Crumb"', '"Nobody"'],
    "Boolean": ["true", "false"],
}
# Values for variables: valid ones, then ones that do not coerce.
VARIABLE_VALUES: dict[str, tuple[list[Any], list[Any]]] = {
    "Int": ([2, 1, 5, 0, 1000, -1, None], ["abc", 2**31, 1.5]),
    "ID": (["1", "3", "2", 3, "99", "x", None], [True]),
    "String": (["Baker", "Crumb", "Nobody", None], [3]),
    "Boolean": ([True, False, None], ["yes"]),
}
# Cursors, by field and argument: mostly ones that decode to a position in the seeded data (the
# small seed's 6 bakeries and their orders over the seed's first hours), then ones that do not.
_BAKERY_CURSORS = [bakery_cursor(2), bakery_cursor(5), bakery_cursor(1), bakery_cursor(6)]
_ORDER_CURSORS = [order_cursor(EPOCH + timedelta(minutes=m), i) for m, i in ((200, 10), (99, 2))]
CURSORS: dict[tuple[str, str], list[str]] = {
    ("bakeriesConnection", "after"): [*_BAKERY_CURSORS, "nope", _ORDER_CURSORS[0]],
    ("ordersConnection", "after"): [*_ORDER_CURSORS, *_ORDER_CURSORS, "nope", _BAKERY_CURSORS[0]],
}
_OMIT: Any = object()  # a declared variable the request leaves out


@dataclass(frozen=True)
class Case:
    query: str
    variables: dict[str, Any]

    def __repr__(self) -> str:
        return f"Case(query={self.query!r}, variables={self.variables!r})"


@dataclass
class _Document:
    draw: Any
    schema: GraphQLSchema
    variable_definitions: list[str] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    fragments: list[str] = field(default_factory=list)
    aliases: int = 0

    def variable(
        self, type_text: str, values: tuple[list[Any], list[Any]], *, required: bool
    ) -> str:
        name = f"v{len(self.variable_definitions)}"
        self.variable_definitions.append(f"${name}: {type_text}")
        good, bad = values
        # One variable in a few dozen fails to coerce (which fails the whole operation).
        roll = self.draw(st.integers(0, 39))
        value = self.draw(st.sampled_from(bad)) if roll == 39 else _OMIT
        if roll < 37:
            value = self.draw(st.sampled_from(good))
        if value is not _OMIT:
            self.variables[name] = value
        elif not required and self.draw(st.booleans()):
            self.variables[name] = None
        return f"${name}"

    def condition(self) -> str:
        """A `@skip`/`@include` directive, or nothing."""
        choice = self.draw(st.sampled_from(["", "", "", "", "", "", "", "", "skip", "include"]))
        if not choice:
            return ""
        if self.draw(st.booleans()):
            value = self.draw(st.sampled_from(["true", "false"]))
        else:
            name = f"v{len(self.variable_definitions)}"
            self.variable_definitions.append(f"${name}: Boolean!")
            self.variables[name] = self.draw(st.booleans())
            value = f"${name}"
        return f" @{choice}(if: {value})"

    def argument_value(
        self, arg_type: GraphQLInputType, cursors: list[str] | None = None
    ) -> str | None:
        named = get_named_type(arg_type)
        required = isinstance(arg_type, GraphQLNonNull)
        if cursors is not None:
            literals = [f'"{cursor}"' for cursor in cursors]
            values: tuple[list[Any], list[Any]] = ([*cursors, None], [7])
        elif isinstance(named, GraphQLEnumType):
            literals = list(named.values)
            values = ([*literals, None], ["NOPE"])
        elif isinstance(named, GraphQLScalarType) and named.name in LITERALS:
            literals = LITERALS[named.name]
            values = VARIABLE_VALUES[named.name]
        else:
            return None
        how = self.draw(st.sampled_from(["omit", "literal", "variable", "omit", "literal", "null"]))
        if how == "variable":
            return self.variable(str(arg_type), values, required=required)
        if how == "null" and not required:
            return "null"
        if how == "omit" and not required:
            return ""
        return str(self.draw(st.sampled_from(literals)))

    def field(self, object_type: GraphQLObjectType, depth: int) -> str | None:
        names = sorted(object_type.fields)
        leaves = [n for n in names if is_leaf_type(get_named_type(object_type.fields[n].type))]
        if depth >= MAX_DEPTH:
            names = leaves
        elif depth < 2:  # nested levels are where batching (and its errors) happen
            names += [n for n in names if n not in leaves]
        name = self.draw(st.sampled_from(names))
        definition = object_type.fields[name]
        arguments = []
        for arg_name, arg in definition.args.items():
            value = self.argument_value(arg.type, CURSORS.get((name, arg_name)))
            if value is None:
                return None  # an argument type this generator does not know
            if value:
                arguments.append(f"{arg_name}: {value}")
        # Fields with arguments get their own alias, or two of them would not merge.
        alias = ""
        if arguments or self.draw(st.integers(0, 4)) == 0:
            self.aliases += 1
            alias = f"a{self.aliases}: "
        text = alias + name + (f"({', '.join(arguments)})" if arguments else "")
        text += self.condition()
        inner = get_named_type(definition.type)
        if isinstance(inner, GraphQLObjectType):
            text += " " + self.selection_set(inner, depth + 1)
        return text

    def selection_set(self, object_type: GraphQLObjectType, depth: int) -> str:
        selections: list[str] = []
        count = self.draw(st.integers(1, MAX_SELECTIONS))
        for _ in range(count):
            kind = self.draw(st.sampled_from(["field"] * 6 + ["typename", "inline", "spread"]))
            if kind == "typename":
                selections.append("__typename" + self.condition())
            elif kind == "inline" and depth < MAX_DEPTH:
                on = f" on {object_type.name}" if self.draw(st.booleans()) else ""
                body = self.selection_set(object_type, depth)
                selections.append(f"...{on}{self.condition()} {body}")
            elif kind == "spread" and depth < MAX_DEPTH:
                name = f"F{len(self.fragments)}"
                self.fragments.append("")  # reserve the name before the body draws more
                body = self.selection_set(object_type, depth)
                self.fragments[int(name[1:])] = f"fragment {name} on {object_type.name} {body}"
                selections.append(f"...{name}{self.condition()}")
            else:
                text = self.field(object_type, depth)
                if text is not None:
                    selections.append(text)
        if not selections:
            selections.append("__typename")
        return "{ " + " ".join(selections) + " }"


@st.composite
def queries(draw: Any, schema: GraphQLSchema) -> Case:
    document = _Document(draw, schema)
    assert schema.query_type is not None
    body = document.selection_set(schema.query_type, 0)
    header = "query"
    if document.variable_definitions:
        header += "(" + ", ".join(document.variable_definitions) + ")"
    text = " ".join([f"{header} {body}", *document.fragments])
    return Case(text, document.variables)
