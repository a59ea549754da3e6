"""What one execution of a cached document needs: the operation, the fragments, the coerced
variables, the context - graphql-core's `Executor.build`, minus the work that depends only on the
document, which is done once per document here.

The operation is chosen and variables are coerced with graphql-core's own rules and messages
(the same loop as `Executor.build`, and its `get_variable_values`), so a request that fails here
fails with exactly the errors graphql-core would give.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLResolveInfoHelpers,
    GraphQLSchema,
    OperationDefinitionNode,
)
from graphql.execution.collect_fields import FragmentDetails
from graphql.execution.values import VariableValues, get_variable_values
from graphql.pyutils import Path, gather_with_cancel, is_awaitable

MAX_COERCION_ERRORS = 50  # graphql-core's default for execute()
NO_VARIABLES = VariableValues({}, {})


@dataclass(slots=True)
class Document:
    """What is the same for every execution of one document."""

    fragment_definitions: dict[str, FragmentDefinitionNode]
    fragments: dict[str, FragmentDetails]
    operations: dict[str | None, OperationDefinitionNode | list[GraphQLError]] = field(
        default_factory=dict
    )
    # Fragment variables are experimental in graphql-core; documents using them go there.
    plain: bool = True

    @classmethod
    def of(cls, document: DocumentNode) -> Document:
        definitions = {
            node.name.value: node
            for node in document.definitions
            if isinstance(node, FragmentDefinitionNode)
        }
        plain = not any(node.variable_definitions for node in definitions.values())
        fragments = {name: FragmentDetails(node) for name, node in definitions.items()}
        return cls(definitions, fragments, plain=plain)

    def operation(
        self, document: DocumentNode, name: str | None
    ) -> OperationDefinitionNode | list[GraphQLError]:
        """graphql-core's choice of operation (Executor.build), remembered per name."""
        chosen = self.operations.get(name)
        if chosen is None:
            chosen = self.operations[name] = _choose(document, name)
        return chosen


def _choose(
    document: DocumentNode, name: str | None
) -> OperationDefinitionNode | list[GraphQLError]:
    operation: OperationDefinitionNode | None = None
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            if name is None:
                if operation:
                    return [
                        GraphQLError(
                            "Must provide operation name if query contains multiple operations."
                        )
                    ]
                operation = definition
            elif definition.name and definition.name.value == name:
                operation = definition
    if operation is None:
        if name is not None:
            return [GraphQLError(f"Unknown operation named '{name}'.")]
        return [GraphQLError("Must provide an operation.")]
    return operation


@dataclass(slots=True)
class OperationInput:
    """One execution's inputs, and the `info` graphql-core would give its resolvers."""

    schema: GraphQLSchema
    document: Document
    operation: OperationDefinitionNode
    variable_values: VariableValues
    root_value: Any
    context: Any

    @classmethod
    def build(
        cls,
        schema: GraphQLSchema,
        document: Document,
        node: DocumentNode,
        root_value: Any,
        context: Any,
        variables: dict[str, Any] | None,
        operation_name: str | None,
    ) -> OperationInput | list[GraphQLError]:
        operation = document.operation(node, operation_name)
        if isinstance(operation, list):
            return list(operation)
        values = NO_VARIABLES
        if operation.variable_definitions:
            coerced = get_variable_values(
                schema,
                operation.variable_definitions,
                variables or {},
                max_errors=MAX_COERCION_ERRORS,
            )
            if isinstance(coerced, list):
                return coerced
            values = coerced
        return cls(schema, document, operation, values, root_value, context)

    def resolve_info(
        self,
        definition: GraphQLField,
        nodes: list[FieldNode],
        parent_type: GraphQLObjectType,
        path: Path,
    ) -> GraphQLResolveInfo[Any]:
        return GraphQLResolveInfo(
            nodes[0].name.value,
            nodes,
            definition.type,
            parent_type,
            path,
            self.schema,
            self.document.fragment_definitions,
            self.root_value,
            self.operation,
            self.variable_values,
            self.context,
            is_awaitable,
            None,
            HELPERS,
        )


def _gather(values: Any) -> Any:
    return gather_with_cancel(*values)


def _track(values: Any) -> None:
    """`info.async_helpers.track`: settle awaitables in the background, as graphql-core does."""
    awaitables = [value for value in values if is_awaitable(value)]
    if awaitables:
        asyncio.gather(*awaitables, return_exceptions=True)


HELPERS = GraphQLResolveInfoHelpers(gather=_gather, track=_track)
