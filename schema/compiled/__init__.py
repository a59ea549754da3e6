"""The compiled executor: a plan per cached document, run a whole query level at a time.

`CompiledExecution.execute` returns None when the operation is outside what plans cover
(mutations, subscriptions, introspection, abstract types, asynchronous resolvers that are not batch
fields); the caller then runs graphql-core, which is always correct. See docs/performance.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import strawberry
from graphql import DocumentNode, ExecutionResult

from schema.compiled.model import OperationPlan, Unsupported
from schema.compiled.plan import Compiler, directive_variables
from schema.compiled.request import Document, OperationInput
from schema.compiled.runtime import Run
from schema.guards import NodeBudget

__all__ = ["CompiledExecution", "PlanCache", "Unsupported"]

# Each combination of @skip/@include variable values gets a plan; past this many, a document is
# run by graphql-core for the combinations not seen yet rather than growing without bound.
MAX_PLANS_PER_DOCUMENT = 32

_UNSUPPORTED: Any = object()


@dataclass(slots=True)
class PlanCache:
    """The plans of one cached document, by operation name and @skip/@include values."""

    plans: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    variables: tuple[str, ...] | None = None
    document: Document | None = None


class CompiledExecution:
    def __init__(self, schema: strawberry.Schema) -> None:
        self.schema = schema
        self.compiler = Compiler(schema)

    async def execute(
        self,
        document: DocumentNode,
        cache: PlanCache,
        *,
        root_value: Any,
        context: Any,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        budget: NodeBudget,
    ) -> ExecutionResult | None:
        self.analyse(document, cache)
        assert cache.document is not None
        if not cache.document.plain:
            return None
        run_input = OperationInput.build(
            self.schema._schema,
            cache.document,
            document,
            root_value,
            context,
            variables,
            operation_name,
        )
        if isinstance(run_input, list):  # no such operation, or variables that do not coerce
            return ExecutionResult(None, run_input)
        plan = self.plan(cache, run_input)
        if plan is None:
            return None
        return await Run(plan, run_input, self.schema, budget).execute()

    @staticmethod
    def analyse(document: DocumentNode, cache: PlanCache) -> None:
        """What plans of this document need whatever the request (once per cached document).
        Done when the document is prepared, where the batch runner yields between new
        documents: left to the first execution, the operations of a batch of 100 new
        documents analysed them back to back in one turn of the event loop (~0.2 s)."""
        if cache.document is None:
            cache.document = Document.of(document)
            cache.variables = directive_variables(document)

    def plan(self, cache: PlanCache, run_input: OperationInput) -> OperationPlan | None:
        assert cache.document is not None and cache.variables is not None
        coerced = run_input.variable_values.coerced
        operation = run_input.operation
        key = (
            operation.name.value if operation.name else None,
            tuple(coerced.get(name) for name in cache.variables),
        )
        plan = cache.plans.get(key)
        if plan is None:
            try:
                plan = self.compiler.compile(
                    operation, cache.document.fragments, run_input.variable_values
                )
            except Unsupported:
                plan = _UNSUPPORTED
            if len(cache.plans) < MAX_PLANS_PER_DOCUMENT:
                cache.plans[key] = plan
        return None if plan is _UNSUPPORTED else plan
