"""The data a plan is made of: what the compiler decides and the runtime and codegen read.

These are plain values with no behaviour beyond a property or two, so the modules that build plans
(`plan.py`), generate code from them (`codegen.py`) and run them (`runtime.py`) all import this one
and none of them imports another to find a type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from graphql import (
    FieldNode,
    GraphQLField,
    GraphQLLeafType,
    GraphQLObjectType,
    GraphQLOutputType,
    OperationDefinitionNode,
)
from graphql.execution.collect_fields import FieldDetails
from strawberry.types.field import StrawberryField

from loaders.field import BatchSpec

Builder = Callable[[Any], dict[str, Any]]
ListBuilder = Callable[[list[Any]], list[Any]]


class Unsupported(Exception):
    """The operation needs something the compiled plan does not cover; graphql-core runs it."""


class Kind(IntEnum):
    TYPENAME = 0
    ATTR = 1  # a plain attribute of the parent object (Strawberry's basic field)
    BATCH = 2  # a `batch_field`: one call of its batch function for every parent of a level
    RESOLVER = 3  # a synchronous resolver, called per parent with a real `info`
    ROOT = 4  # a root field: its resolver, whatever it is, called once


@dataclass(frozen=True, slots=True)
class FastBuilders:
    """The generated functions of one object plan (see codegen.py)."""

    one: Builder  # source -> dict
    many: ListBuilder  # [source, ...] -> [dict, ...] (None items bail)
    many_nullable: ListBuilder  # [source | None, ...] -> [dict | None, ...]


@dataclass(slots=True, eq=False)
class RowsBuilder:
    """A generated function from rows to a selection's dictionaries (see codegen.build_rows),
    with the columns it reads; `getters` gives them as tuples, per shape of row."""

    columns: tuple[str, ...]
    # (rows, getter) -> [dict, ...]; no getter when no column is read
    many: Callable[[Any, Callable[[Any], Any] | None], list[Any]]
    getters: dict[tuple[str, ...], Callable[[Any], Any]] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class TypeRef:
    """An output type, unwrapped: non-null or not, then a list, a leaf or an object."""

    graphql_type: GraphQLOutputType
    non_null: bool
    item: TypeRef | None = None
    leaf: GraphQLLeafType | None = None
    object: ObjectPlan | None = None
    # The type of a list's items: an object here is counted with its list, not on its own
    # (see schema/guards.py for what counts as a result node).
    listed: bool = False


@dataclass(slots=True, eq=False)
class FieldPlan:
    key: str  # the response key (alias or name)
    name: str
    kind: Kind
    parent_type: GraphQLObjectType
    definition: GraphQLField
    nodes: list[FieldNode]
    first: FieldDetails
    type: TypeRef
    attr: str = ""
    strawberry_field: StrawberryField | None = None
    spec: BatchSpec | None = None
    many: bool = False
    # Arguments without variables are coerced once, here; None means "coerce per request".
    static_args: dict[str, Any] | None = None
    static_args_error: Exception | None = None
    owner: ObjectPlan | None = None  # the selection this field belongs to

    @property
    def has_arguments(self) -> bool:
        return bool(self.definition.args or self.nodes[0].arguments)


@dataclass(slots=True, eq=False)
class ObjectPlan:
    type: GraphQLObjectType
    fields: list[FieldPlan]
    by_key: dict[str, FieldPlan] = field(default_factory=dict)
    batch_fields: list[FieldPlan] = field(default_factory=list)
    fast: FastBuilders | None = None
    # Its JSON depends only on the source object, not on where it sits in the response: no
    # resolver below it sees its `info.path`. Then one object met twice is built once.
    shareable: bool = False
    # The projection path's builders, by the row type of the rows met (`codegen.project`):
    # made on first use, None for a row type this selection cannot be built from.
    row_builders: dict[Any, RowsBuilder | None] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.type.name


@dataclass(slots=True, eq=False)
class OperationPlan:
    operation: OperationDefinitionNode
    root: ObjectPlan
