"""Generated builders: one Python function per object type of a plan that turns a source object
(or a whole list of them) into its response dictionary, as graphql-jit does in JavaScript.

The generated code only handles the case where nothing can go wrong: every field is a plain
attribute with a leaf value of the expected Python type (or `__typename`, or a batch field that
gets a placeholder filled in later). Any surprise - a None in a non-null field, an exception, an
unexpected type - raises `Bail`, and the runtime redoes that part the careful way, which produces
graphql-core's exact errors. So the fast path never decides an outcome the slow path would not.

The projection path (`project`): a list of objects that are still rows (`schema.rows.Rows`)
under a selection of plain leaf fields and `__typename` is built from the rows' tuples without
the objects, each field's value computed as its `RowType` declares (the column, through its
function if any), then the same leaf checks as above. A selection with batch fields (whose batch
functions take the objects), or with a field the row type does not declare, builds the objects.
"""

from __future__ import annotations

import keyword
from enum import Enum
from operator import itemgetter
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLString,
)
from graphql.pyutils import Undefined

from schema.compiled.model import FastBuilders, FieldPlan, Kind, ObjectPlan, RowsBuilder
from schema.rows import Rows, RowType

MIN_INT = -(2**31)
MAX_INT = 2**31 - 1


class Bail(Exception):
    """The fast path met something it does not decide; the careful path takes over."""


def _bail() -> Any:
    raise Bail


def build_fast(plan: ObjectPlan) -> FastBuilders | None:
    """The generated builders of `plan`, or None when one of its fields needs the careful path."""
    namespace: dict[str, Any] = {"_bail": _bail, "_U": Undefined}
    entries: list[str] = []
    for index, field in enumerate(plan.fields):
        if field.kind is Kind.TYPENAME:
            entries.append(f"{field.key!r}: {plan.name!r}")
        elif field.kind is Kind.BATCH:
            entries.append(f"{field.key!r}: None")  # keeps the key's place; filled per level
        elif field.kind is Kind.ATTR and field.type.leaf is not None:
            entries.append(f"{field.key!r}: {_leaf_expression(field, index, namespace)}")
        else:
            return None
    body = "{" + ", ".join(entries) + "}"
    source = (
        f"def one(s):\n    return {body}\n"
        f"def many(items):\n    return [{body} for s in items]\n"
        f"def many_nullable(items):\n    return [None if s is None else {body} for s in items]\n"
    )
    exec(compile(source, f"<compiled plan for {plan.name}>", "exec"), namespace)
    return FastBuilders(namespace["one"], namespace["many"], namespace["many_nullable"])


def project(plan: ObjectPlan, rows: Rows[Any]) -> list[Any] | None:
    """The dictionaries of `plan` for every row of `rows`, or None when the objects must be
    built (the selection cannot be built from these rows, or one value needs the careful path)."""
    if plan.batch_fields:
        return None
    builders = plan.row_builders
    row_type = rows.type
    if row_type in builders:
        builder = builders[row_type]
    else:
        builder = builders[row_type] = build_rows(plan, row_type)
    if builder is None:
        return None
    try:
        get = builder.getters.get(rows.names)
        if get is None and builder.columns:
            get = builder.getters[rows.names] = _getter(rows.names, builder.columns)
        return builder.many(rows.rows, get)
    except Exception:  # Bail, or any other surprise: the objects' careful path decides
        return None


def build_rows(plan: ObjectPlan, row_type: RowType[Any]) -> RowsBuilder | None:
    """The projection builder of `plan` for rows of `row_type`, or None when a field is not a
    plain leaf the row type declares (or `__typename`)."""
    namespace: dict[str, Any] = {"_bail": _bail, "_U": Undefined}
    columns: list[str] = []
    entries: list[str] = []
    for index, field in enumerate(plan.fields):
        if field.kind is Kind.TYPENAME:
            entries.append(f"{field.key!r}: {plan.name!r}")
            continue
        declared = row_type.fields.get(field.attr) if field.kind is Kind.ATTR else None
        if declared is None or field.type.leaf is None:
            return None
        column, convert = declared
        if column not in columns:
            columns.append(column)
        value = f"c{columns.index(column)}"
        if convert is not None:
            namespace[f"_f{index}"] = convert
            value = f"_f{index}({value})"
        entries.append(f"{field.key!r}: {_leaf_expression(field, index, namespace, value)}")
    body = "{" + ", ".join(entries) + "}"
    if not columns:
        source = f"def many(rows, get):\n    return [{body} for _ in rows]\n"
    else:
        target = ", ".join(f"c{i}" for i in range(len(columns)))
        source = f"def many(rows, get):\n    return [{body} for {target} in map(get, rows)]\n"
    exec(compile(source, f"<compiled rows of {plan.name}>", "exec"), namespace)
    return RowsBuilder(tuple(columns), namespace["many"])


def _getter(names: tuple[str, ...], columns: tuple[str, ...]) -> Any:
    """From a row with columns `names`, the value of `columns` (a tuple of them when several;
    raises if one is missing)."""
    return itemgetter(*[names.index(column) for column in columns])


def _leaf_expression(
    field: FieldPlan, index: int, namespace: dict[str, Any], getter: str | None = None
) -> str:
    """The expression of a leaf field's value, read by `getter` (default: the attribute of
    the source object `s`)."""
    attr = field.attr
    if getter is not None:
        pass
    elif attr.isidentifier() and not keyword.iskeyword(attr):
        getter = f"s.{attr}"
    else:
        namespace[f"_a{index}"] = attr
        getter = f"getattr(s, _a{index})"
    leaf = field.type.leaf
    assert leaf is not None
    check, output = _leaf_check(leaf, index, namespace)
    if field.type.non_null:
        if check.startswith("v.__class__ is "):  # None fails it, so None bails as it should
            return f"({output} if (v := {getter}){check[1:]} else _bail())"
        return f"({output} if ((v := {getter}) is not None and {check}) else _bail())"
    return f"(None if (v := {getter}) is None else ({output} if {check} else _bail()))"


def _leaf_check(leaf: GraphQLLeafType, index: int, namespace: dict[str, Any]) -> tuple[str, str]:
    """A test of `v` that holds only when coercing it is the identity (or a known lookup), and
    the expression that gives the coerced value then."""
    if leaf is GraphQLString or leaf is GraphQLID:
        return "v.__class__ is str", "v"
    if leaf is GraphQLInt:
        return f"v.__class__ is int and {MIN_INT} <= v <= {MAX_INT}", "v"
    if leaf is GraphQLBoolean:
        return "v.__class__ is bool", "v"
    wrapped = getattr(leaf, "wrapped_cls", None)
    if (
        isinstance(leaf, GraphQLEnumType)
        and isinstance(wrapped, type)
        and issubclass(wrapped, Enum)
    ):
        names = {}
        for member in wrapped:
            try:
                names[member] = leaf.coerce_output_value(member)
            except Exception:  # members the type cannot serialize take the careful path
                continue
        namespace[f"_E{index}"] = wrapped
        namespace[f"_N{index}"] = names
        return f"v.__class__ is _E{index} and v in _N{index}", f"_N{index}[v]"
    namespace[f"_S{index}"] = leaf.coerce_output_value
    return f"(c := _S{index}(v)) is not None and c is not _U", "c"
