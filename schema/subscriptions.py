"""Starting a subscription under the same rules as every other operation, whatever carries it.

A subscription reaches the schema through `Executor.prepare` like a query (the document limits:
tokens, depth, aliases; validation; the cached scope needs), then `start` refuses it before its
resolver runs when the caller lacks a scope or its static cost is over the limit, exactly as
`Executor.execute` refuses a query. Only then does graphql-core create the event stream. Each
event is executed (the subscription's selection on the event) and its unexpected errors masked
like any other result. The transports (app/http/subscriptions.py: WebSocket and SSE) decide how
long a stream may live and how many one connection may hold.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from graphql import ExecutionResult, GraphQLError, OperationType, subscribe
from graphql.pyutils import is_awaitable

from schema.access import INTERNAL, refusal
from schema.execution import Executor, GraphQLRequest, PreparedDocument


@dataclass(frozen=True, slots=True)
class Refused:
    """The operation did not start: the errors say why (nothing ran)."""

    errors: tuple[GraphQLError, ...]


def not_a_subscription(kind: OperationType | None) -> GraphQLError:
    what = "an operation it can choose" if kind is None else f"a {kind.value}"
    return GraphQLError(
        f"This endpoint streams subscriptions, and the request holds {what}: send one "
        "`subscription` operation (with `operationName` when the document has several), or "
        "send queries and mutations as ordinary GraphQL over HTTP.",
        extensions={"code": "BAD_REQUEST"},
    )


async def start(
    executor: Executor, request: GraphQLRequest, context: Any
) -> Refused | AsyncIterator[ExecutionResult]:
    """The stream of results of one subscription operation, or why it was refused."""
    if request.query is None:
        error = GraphQLError("The request has no query: send it in the `query` field.")
        return Refused((error,))
    prepared = executor.prepare(request.query)
    return await start_prepared(executor, prepared, request, context)


async def start_prepared(
    executor: Executor, prepared: PreparedDocument, request: GraphQLRequest, context: Any
) -> Refused | AsyncIterator[ExecutionResult]:
    if prepared.document is None:
        return Refused(prepared.errors)
    kind = prepared.operation_type(request.operation_name)
    if kind is not OperationType.SUBSCRIPTION:
        return Refused((not_a_subscription(kind),))
    caller = getattr(context, "caller", INTERNAL)
    forbidden = refusal(caller, executor.needs_of(prepared, request.operation_name))
    if forbidden is not None:
        return Refused((forbidden,))
    over_cost = executor.over_cost(executor.estimate(prepared, request))
    if over_cost is not None:
        return Refused((over_cost,))
    outcome: Any = subscribe(
        executor.graphql_schema,
        prepared.document,
        context_value=context,
        variable_values=dict(request.variables) if request.variables is not None else None,
        operation_name=request.operation_name,
    )
    if is_awaitable(outcome):
        outcome = await outcome
    if isinstance(outcome, ExecutionResult):
        # The source stream could not be created: bad variables, or the resolver raised.
        return Refused(tuple(executor.mask(error) for error in outcome.errors or ()))
    return _masked(executor, outcome)


async def _masked(
    executor: Executor, results: AsyncIterator[ExecutionResult]
) -> AsyncIterator[ExecutionResult]:
    try:
        while True:
            try:
                result = await anext(results)
            except StopAsyncIteration:
                return
            except GraphQLError as error:
                # Raised by the resolver's generator (a job that is not found, say): the
                # subscription's last result, with its message for the client.
                yield ExecutionResult(None, [executor.mask(error)])
                return
            except Exception as error:
                wrapped = GraphQLError(str(error), original_error=error)
                yield ExecutionResult(None, [executor.mask(wrapped)])
                return
            if result.errors:
                result.errors = [executor.mask(error) for error in result.errors]
            yield result
    finally:
        # Closing the generator closes graphql-core's stream, and through it the resolver's.
        aclose = getattr(results, "aclose", None)
        if aclose is not None:
            await aclose()
