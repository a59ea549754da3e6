"""Planning the operations of one HTTP request, before any runs: each one parsed and validated
through the executor's cache, its type found, its cost estimated and checked against the limits.
One that cannot run gets its `Outcome` here (a refusal naming the problem), and the others are
unaffected. `app/http/batch.py` runs the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import ExecutionResult, GraphQLError, GraphQLSyntaxError, OperationType

from app.http.params import Operation
from schema.cost import Estimate, OperationCost
from schema.execution import Executor, GraphQLRequest, PreparedDocument


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one operation of the request produced.

    `rejected`: a request error (parameters, document, operation name, variables, cost): the
    operation never ran, so its response has no `data`. `code` goes into `extensions.code` of
    errors that have none. `cost` (when the document validated) goes into `extensions.cost`;
    `validated`: only costed, not run (`GraphQL-Cost: validate`).
    """

    result: ExecutionResult
    kind: OperationType | None
    rejected: bool = False
    bad_parameters: bool = False
    code: str | None = None
    cost: OperationCost | None = None
    validated: bool = False
    # Why the operation was stopped before its end, if it was (STOPPED_*).
    stopped: str | None = None

    @classmethod
    def refused(
        cls,
        errors: list[GraphQLError],
        code: str,
        kind: OperationType | None = None,
        *,
        bad_parameters: bool = False,
        cost: OperationCost | None = None,
    ) -> Outcome:
        return cls(ExecutionResult(None, errors), kind, True, bad_parameters, code, cost)


@dataclass(frozen=True, slots=True)
class Planned:
    """An operation ready to run, or already answered (`outcome`)."""

    request: GraphQLRequest | None
    prepared: PreparedDocument | None = None
    kind: OperationType | None = None
    outcome: Outcome | None = None
    estimate: Estimate | None = None

    @property
    def requested_cost(self) -> int:
        """What this operation adds to the request's cost: nothing if it will not run."""
        if self.outcome is not None or self.estimate is None:
            return 0
        return self.estimate.requested


def plan(executor: Executor, operation: Operation) -> Planned:
    request = operation.request
    if request is None or request.query is None:
        error = GraphQLError(operation.problem or "The operation has no `query`.")
        return Planned(
            request, outcome=Outcome.refused([error], operation.code, bad_parameters=True)
        )
    prepared = executor.prepare(request.query, request.document_id)
    if prepared.refused_cost is not None:
        cost = OperationCost(prepared.refused_cost)
        outcome = Outcome.refused(list(prepared.errors), "COST_LIMIT_EXCEEDED", cost=cost)
        return Planned(request, prepared, outcome=outcome)
    if prepared.document is None:
        syntax = any(isinstance(error, GraphQLSyntaxError) for error in prepared.errors)
        code = "GRAPHQL_PARSE_FAILED" if syntax else "GRAPHQL_VALIDATION_FAILED"
        return Planned(request, prepared, outcome=Outcome.refused(list(prepared.errors), code))
    kind = prepared.operation_type(request.operation_name)
    if kind is None:
        error = GraphQLError(_unresolved_operation(prepared, request.operation_name))
        outcome = Outcome.refused([error], "OPERATION_RESOLUTION_FAILURE")
        return Planned(request, prepared, outcome=outcome)
    estimate = executor.estimate(prepared, request)
    refusal = executor.over_cost(estimate)
    if refusal is not None and estimate is not None:
        cost = OperationCost(estimate.requested)
        outcome = Outcome.refused([refusal], "COST_LIMIT_EXCEEDED", kind, cost=cost)
        return Planned(request, prepared, kind, outcome, estimate)
    return Planned(request, prepared, kind, estimate=estimate)


def _unresolved_operation(prepared: PreparedDocument, name: str | None) -> str:
    named = sorted(n for n in prepared.operations if n is not None)
    if name is not None:
        known = ", ".join(named) or "none"
        return f"Unknown operation named '{name}' (the document has: {known})."
    if not prepared.operations:
        return "The document has no operation to run."
    return (
        "The document has several operations: choose one with `operationName` "
        f"({', '.join(named)})."
    )


def operation_cost(item: Planned, result: ExecutionResult | None) -> OperationCost | None:
    """Requested and, when it ran (`result`), actual cost; None if the document did not cost."""
    if item.estimate is None:
        return None
    if result is None:
        return OperationCost(item.estimate.requested)
    assert item.request is not None
    actual = item.estimate.actual(result.data, item.request.variables)
    return OperationCost(item.estimate.requested, actual)


def validated(planned: list[Planned]) -> list[Outcome]:
    """`GraphQL-Cost: validate`: each operation's cost, and the refusals a run would meet; nothing
    is executed."""
    return [
        item.outcome
        or Outcome(
            ExecutionResult(None, None),
            item.kind,
            cost=operation_cost(item, None),
            validated=True,
        )
        for item in planned
    ]
