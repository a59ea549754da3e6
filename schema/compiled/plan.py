"""The plan of one operation: what to do for every field, decided once per cached document.

graphql-core decides for every field of every object, at run time, which resolver to call, how to
complete its value and which sub-fields to collect. For a given document (and the values of the
variables its `@skip`/`@include` read) all of that is fixed, so the compiler decides it once:

- field collection (fragments, merging, `@skip`/`@include`) is graphql-core's own
  `collect_fields`/`collect_subfields`, so order and merging are the same by construction;
- each field gets a kind: a plain attribute, a batch field (resolved for a whole level by one call
  of its batch function), a synchronous resolver, `__typename`, or a root resolver;
- each object type gets generated functions that build its dictionaries (see `codegen.py`).

Anything outside that subset raises `Unsupported`, and graphql-core runs the operation instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    Visitor,
    is_leaf_type,
    visit,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues, get_argument_values
from graphql.type import TypeNameMetaFieldDef
from strawberry.types.field import StrawberryField

from loaders.field import BatchSpec, batch_spec_of
from schema.compiled.codegen import build_fast
from schema.compiled.model import FieldPlan, Kind, ObjectPlan, OperationPlan, TypeRef, Unsupported


@dataclass(frozen=True, slots=True)
class Compiler:
    """Compiles the operations of one schema (a Strawberry schema and its graphql-core twin)."""

    schema: strawberry.Schema

    def compile(
        self,
        operation: OperationDefinitionNode,
        fragments: dict[str, FragmentDetails],
        variable_values: VariableValues,
    ) -> OperationPlan:
        if operation.operation is not OperationType.QUERY:
            raise Unsupported("only queries are compiled")
        if operation.directives:
            raise Unsupported("directives on the operation")
        graphql_schema = self.schema._schema
        root_type = graphql_schema.query_type
        assert root_type is not None
        try:
            collected = collect_fields(
                graphql_schema, fragments, variable_values, root_type, operation
            )
        except (GraphQLError, RecursionError) as error:
            raise Unsupported("field collection failed") from error
        if collected.new_defer_usages:
            raise Unsupported("@defer")
        builder = _PlanBuilder(self.schema, fragments, variable_values, operation)
        root = builder.object_plan(root_type, collected.grouped_field_set, root=True)
        return OperationPlan(operation, root)


@dataclass(slots=True)
class _PlanBuilder:
    schema: strawberry.Schema
    fragments: dict[str, FragmentDetails]
    variable_values: VariableValues
    operation: OperationDefinitionNode

    def object_plan(
        self,
        object_type: GraphQLObjectType,
        grouped: Mapping[str, list[FieldDetails]],
        *,
        root: bool = False,
    ) -> ObjectPlan:
        if object_type.is_type_of is not None:
            raise Unsupported(f"{object_type.name} has is_type_of")
        fields = []
        for key, details in grouped.items():
            plan = self.field_plan(object_type, key, details, root=root)
            if plan is not None:
                fields.append(plan)
        plan_ = ObjectPlan(object_type, fields)
        for field_plan in fields:
            field_plan.owner = plan_
        plan_.by_key = {f.key: f for f in fields}
        plan_.batch_fields = [f for f in fields if f.kind is Kind.BATCH]
        plan_.fast = build_fast(plan_) if not root else None
        plan_.shareable = not root and all(_position_free(f) for f in fields)
        return plan_

    def field_plan(
        self,
        parent_type: GraphQLObjectType,
        key: str,
        details: list[FieldDetails],
        *,
        root: bool,
    ) -> FieldPlan | None:
        if any(d.defer_usage is not None or d.fragment_variable_values for d in details):
            raise Unsupported("@defer or fragment arguments")
        first = details[0]
        name = first.node.name.value
        definition = self.schema._schema.get_field(parent_type, name)
        if definition is None:
            return None  # graphql-core skips unknown fields too (validation rejects them first)
        nodes = [d.node for d in details]
        kind, attr, strawberry_field, spec = self.kind_of(definition, name, root=root)
        type_ref = self.type_ref(definition.type, details)
        plan = FieldPlan(
            key=key,
            name=name,
            kind=kind,
            parent_type=parent_type,
            definition=definition,
            nodes=nodes,
            first=first,
            type=type_ref,
            attr=attr,
            strawberry_field=strawberry_field,
            spec=spec,
        )
        if spec is not None:
            plan.many = spec.many if spec.many is not None else _is_list(definition.type)
        if plan.has_arguments and not _uses_variables(first.node):
            try:
                plan.static_args = get_argument_values(definition, first.node)
            except Exception as error:  # reported per parent at run time, as graphql-core does
                plan.static_args_error = error
        return plan

    def kind_of(
        self, definition: GraphQLField, name: str, *, root: bool
    ) -> tuple[Kind, str, StrawberryField | None, BatchSpec | None]:
        if definition is TypeNameMetaFieldDef:
            return Kind.TYPENAME, "", None, None
        if name.startswith("__"):
            raise Unsupported("introspection")
        strawberry_field = definition.extensions.get("strawberry-definition")
        if not isinstance(strawberry_field, StrawberryField):
            raise Unsupported(f"{name} is not a Strawberry field")
        if root:
            return Kind.ROOT, "", strawberry_field, None
        resolver = definition.resolve
        if (
            strawberry_field.is_basic_field
            and getattr(resolver, "_is_default", False)
            and self.schema.config.default_resolver is getattr
            and not definition.args
        ):
            return Kind.ATTR, strawberry_field.python_name, strawberry_field, None
        base = strawberry_field.base_resolver
        spec = batch_spec_of(getattr(base, "wrapped_func", None))
        if spec is not None and not strawberry_field.extensions:
            return Kind.BATCH, "", strawberry_field, spec
        if not strawberry_field.is_async and resolver is not None:
            return Kind.RESOLVER, "", strawberry_field, None
        raise Unsupported(f"{name} has an asynchronous resolver that is not a batch field")

    def type_ref(self, graphql_type: GraphQLOutputType, details: list[FieldDetails]) -> TypeRef:
        non_null = isinstance(graphql_type, GraphQLNonNull)
        inner = graphql_type.of_type if isinstance(graphql_type, GraphQLNonNull) else graphql_type
        if isinstance(inner, GraphQLList):
            item = self.type_ref(inner.of_type, details)
            item.listed = True
            return TypeRef(graphql_type, non_null, item=item)
        if is_leaf_type(inner):
            return TypeRef(graphql_type, non_null, leaf=inner)
        if isinstance(inner, GraphQLObjectType):
            try:
                collected = collect_subfields(
                    self.schema._schema,
                    self.fragments,
                    self.variable_values,
                    self.operation,
                    inner,
                    details,
                )
            except (GraphQLError, RecursionError) as error:
                raise Unsupported("field collection failed") from error
            if collected.new_defer_usages:
                raise Unsupported("@defer")
            return TypeRef(
                graphql_type,
                non_null,
                object=self.object_plan(inner, collected.grouped_field_set),
            )
        raise Unsupported(f"abstract type {inner}")


def _position_free(field: FieldPlan) -> bool:
    if field.kind not in (Kind.TYPENAME, Kind.ATTR, Kind.BATCH):
        return False
    ref: TypeRef | None = field.type
    while ref is not None and ref.item is not None:
        ref = ref.item
    return ref is None or ref.object is None or ref.object.shareable


def _is_list(graphql_type: GraphQLOutputType) -> bool:
    if isinstance(graphql_type, GraphQLNonNull):
        graphql_type = graphql_type.of_type
    return isinstance(graphql_type, GraphQLList)


class _VariableFinder(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def enter_variable(self, *_args: Any) -> None:
        self.found = True


def _uses_variables(node: FieldNode) -> bool:
    finder = _VariableFinder()
    for argument in node.arguments or ():
        visit(argument, finder)
    return finder.found


class _DirectiveVariables(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def enter_directive(self, node: DirectiveNode, *_args: Any) -> None:
        if node.name.value not in ("skip", "include"):
            return
        for argument in node.arguments or ():
            if isinstance(argument.value, VariableNode):
                name = argument.value.name.value
                if name not in self.names:
                    self.names.append(name)


def directive_variables(document: DocumentNode) -> tuple[str, ...]:
    """The variables that `@skip`/`@include` read: a plan depends on their values only."""
    finder = _DirectiveVariables()
    visit(document, finder)
    return tuple(finder.names)
