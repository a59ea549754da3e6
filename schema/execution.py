"""The execution seam: every transport runs GraphQL through `Executor`, and only through it.

It owns what is the same for every operation whatever carried it: parsing and validating (cached,
since validation is the largest fixed cost per request), the query limits (tokens, depth, aliases),
running the operation, and hiding unexpected errors from clients. A faster executor can replace
`execute` here without any transport noticing.
"""

from __future__ import annotations

import functools
import logging
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    specified_rules,
    validate,
)
from graphql.pyutils import is_awaitable
from graphql.validation import NoSchemaIntrospectionCustomRule

from app.db.faults import DatabaseFault, database_fault
from app.db.writes import ConstraintViolation
from app.settings import Settings
from loaders.builder import TooManyResults
from schema.access import INTERNAL, Need, ScopeRules, refusal
from schema.compiled import CompiledExecution, PlanCache
from schema.cost import CostAnalysis, CostCache, CostModel, Estimate
from schema.document_limits import (
    field_overlap_refusal,
    max_aliases_rule,
    max_depth_rule,
    operations_refusal,
)
from schema.guards import GuardedExecutor, NodeBudget, NodeLimitExceeded

logger = logging.getLogger("batchery.execution")

# Exceptions whose message is written for the client; any other exception is an internal fault.
USER_FACING_ERRORS: tuple[type[Exception], ...] = (TooManyResults, ConstraintViolation)
INTERNAL_ERROR_MESSAGE = "Internal server error"


@dataclass(frozen=True, slots=True)
class GraphQLRequest:
    """One operation as a client sent it (one element of a batch)."""

    query: str | None
    variables: Mapping[str, Any] | None = None
    operation_name: str | None = None
    extensions: Mapping[str, Any] | None = None
    # A persisted document's id (`sha256:<hex>`, or a manifest's own): what its parse,
    # validation, plans and costs are cached under, instead of its text.
    document_id: str | None = None

    @property
    def cache_key(self) -> str | None:
        return self.document_id or self.query


@dataclass(frozen=True, slots=True)
class PreparedDocument:
    """A parsed and validated document, or the errors that stopped it."""

    document: DocumentNode | None
    errors: tuple[GraphQLError, ...] = ()
    operations: Mapping[str | None, OperationType] = field(default_factory=dict)
    # The scopes each operation needs (schema/access.py), found once with the validation.
    needs: Mapping[str | None, tuple[Need, ...]] = field(default_factory=dict)
    # The compiled plans of this document (filled on first execution; see schema/compiled).
    plans: PlanCache = field(default_factory=PlanCache, compare=False, repr=False)
    # The cost estimates of its operations, by the variables they depend on (schema/cost).
    costs: CostCache = field(default_factory=CostCache, compare=False, repr=False)
    # Set when the document was refused for its cost before validation: the least it costs.
    refused_cost: int | None = None

    def operation_type(self, operation_name: str | None) -> OperationType | None:
        """The type of the operation that would run, or None when it cannot be chosen."""
        if operation_name is None:
            if len(self.operations) == 1:
                return next(iter(self.operations.values()))
            return None
        return self.operations.get(operation_name)


class Executor:
    def __init__(self, schema: strawberry.Schema, settings: Settings) -> None:
        self.schema = schema
        self.graphql_schema = schema._schema
        self.settings = settings
        self.rules = (
            *specified_rules,
            max_depth_rule(settings.max_query_depth),
            max_aliases_rule(settings.max_aliases),
            *(() if settings.introspection else (NoSchemaIntrospectionCustomRule,)),
        )
        self.scope_rules = ScopeRules(self.graphql_schema)
        self._cache: OrderedDict[str, PreparedDocument] = OrderedDict()
        self.compiled = CompiledExecution(schema) if settings.compiled_execution else None
        self.cost_analysis = CostAnalysis(cost_model(self.graphql_schema), settings)

    def is_cached(self, key: str) -> bool:
        """Whether `prepare(query, key)` is a look-up (else it parses, costs and validates)."""
        return key in self._cache

    def prepare(self, query: str, key: str | None = None) -> PreparedDocument:
        """Parse and validate `query`, reusing the outcome for the same text, or for the same
        `key` (a persisted document's id, which stands for one text) (bounded LRU)."""
        key = key or query
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        prepared = self._prepare(query)
        self._cache[key] = prepared
        if len(self._cache) > self.settings.document_cache_size:
            self._cache.popitem(last=False)
        return prepared

    def _prepare(self, query: str) -> PreparedDocument:
        try:
            document = parse(query, max_tokens=self.settings.max_query_tokens)
        except GraphQLError as error:
            return PreparedDocument(None, (name_the_setting(error),))
        many = operations_refusal(document, self.settings.max_document_operations)
        if many is not None:  # before the cost floor, validation and scopes: each is per operation
            return PreparedDocument(None, (many,))
        limit = self.settings.max_operation_cost
        floor = self.cost_analysis.floor(document) if limit > 0 else None
        if floor is not None and floor[0] > limit:
            # Costed before validation, which takes longer than a refusal may for a few
            # hundred aliases: whatever its variables, no operation of it could run.
            cost, variables_lowered_it = floor
            refusal = self.cost_refusal(cost, at_least=variables_lowered_it)
            return PreparedDocument(None, (refusal,), refused_cost=cost)
        overlaps = field_overlap_refusal(document, self.settings.max_field_overlaps)
        if overlaps is not None:
            return PreparedDocument(None, (overlaps,))
        errors = validate(self.graphql_schema, document, self.rules)
        if errors:
            return PreparedDocument(None, tuple(name_the_setting(error) for error in errors))
        operations = {
            (node.name.value if node.name else None): node.operation
            for node in document.definitions
            if isinstance(node, OperationDefinitionNode)
        }
        prepared = PreparedDocument(document, (), operations, self.scope_rules.needs(document))
        if self.compiled is not None:
            self.compiled.analyse(document, prepared.plans)
        return prepared

    def estimate(self, prepared: PreparedDocument, request: GraphQLRequest) -> Estimate | None:
        """The operation's static cost (cached with the document), or None when the document
        did not validate or names no such operation."""
        if prepared.document is None:
            return None
        return self.cost_analysis.estimate(
            prepared.document, prepared.costs, request.operation_name, request.variables
        )

    def over_cost(self, estimate: Estimate | None) -> GraphQLError | None:
        """The refusal of an operation whose static cost is over `max_operation_cost`."""
        limit = self.settings.max_operation_cost
        if estimate is None or limit <= 0 or estimate.requested <= limit:
            return None
        return self.cost_refusal(estimate.requested)

    def cost_refusal(self, cost: int, *, at_least: bool = False) -> GraphQLError:
        limit = self.settings.max_operation_cost
        return GraphQLError(
            f"The operation's cost is {'at least ' if at_least else ''}{cost}, over the limit "
            f"of {limit} for one operation: ask for fewer items (`first`, `limitTo`) or fewer "
            "nested lists, or split it (a server limit, set by BATCHERY_MAX_OPERATION_COST).",
            extensions={
                "code": "COST_LIMIT_EXCEEDED",
                "requestedQueryCost": cost,
                "limit": limit,
                "setting": "BATCHERY_MAX_OPERATION_COST",
            },
        )

    async def execute(
        self,
        prepared: PreparedDocument,
        request: GraphQLRequest,
        context: Any,
        root_value: Any = None,
    ) -> ExecutionResult:
        if prepared.document is None:
            return ExecutionResult(None, list(prepared.errors))
        # Before either executor sees it: an operation the caller may not run never starts.
        forbidden = refusal(
            getattr(context, "caller", INTERNAL), self.needs_of(prepared, request.operation_name)
        )
        if forbidden is not None:
            return ExecutionResult(None, [forbidden])
        over_cost = self.over_cost(self.estimate(prepared, request))
        if over_cost is not None:  # before anything runs: not one SQL statement
            return ExecutionResult(None, [over_cost])
        budget = NodeBudget(self.settings.max_result_nodes)
        try:
            result = await self._execute(prepared, request, context, root_value, budget)
        except NodeLimitExceeded as exceeded:
            # Whatever was built is dropped here, with the frames that held it.
            return ExecutionResult(None, [exceeded.as_graphql_error()])
        finally:
            # A large result holds the garbage collector off until it is gone: when the context
            # knows when that is (the transport runs `after_answer` once it rendered), until then.
            after_answer = getattr(context, "after_answer", None)
            if budget.holds_collector and after_answer is not None:
                after_answer.append(budget.close)
            else:
                budget.close()
        if result.errors:
            result.errors = [self.mask(error) for error in result.errors]
        return result

    async def _execute(
        self,
        prepared: PreparedDocument,
        request: GraphQLRequest,
        context: Any,
        root_value: Any,
        budget: NodeBudget,
    ) -> ExecutionResult:
        document = prepared.document
        assert document is not None
        variables = dict(request.variables) if request.variables is not None else None
        result: Any = None
        if self.compiled is not None:
            result = await self.compiled.execute(
                document,
                prepared.plans,
                root_value=root_value,
                context=context,
                variables=variables,
                operation_name=request.operation_name,
                budget=budget,
            )
        if result is None:  # outside the compiled subset: graphql-core runs it
            result = execute(
                self.graphql_schema,
                document,
                root_value=root_value,
                context_value=context,
                variable_values=variables,
                operation_name=request.operation_name,
                executor_class=GuardedExecutor,
                node_budget=budget,
            )
        if is_awaitable(result):
            result = await result
        assert isinstance(result, ExecutionResult)
        return result

    @staticmethod
    def needs_of(prepared: PreparedDocument, operation_name: str | None) -> tuple[Need, ...]:
        needs = prepared.needs
        if operation_name is None and len(needs) == 1:
            return next(iter(needs.values()))
        return needs.get(operation_name, ())

    async def run(self, request: GraphQLRequest, context: Any) -> ExecutionResult:
        """Prepare and execute in one call (what tests and in-process callers want)."""
        if request.query is None:
            error = GraphQLError("The request has no query: send it in the `query` field.")
            return ExecutionResult(None, [error])
        return await self.execute(self.prepare(request.query), request, context)

    @staticmethod
    def mask(error: GraphQLError) -> GraphQLError:
        """Keep errors meant for clients; replace unexpected faults by a generic message."""
        original = error.original_error
        if original is None or isinstance(original, (GraphQLError, *USER_FACING_ERRORS)):
            return error
        fault = database_fault(original)
        if fault is not None:
            # An outage or a busy database: a stable code the client can retry on, and one log
            # line (no traceback: an outage must not flood the log).
            logger.warning("%s resolving %s: %s", fault.code, _path(error), type(original).__name__)
            return database_error(fault, error)
        logger.error("unexpected error resolving %s", _path(error), exc_info=original)
        return GraphQLError(
            INTERNAL_ERROR_MESSAGE,
            nodes=error.nodes,
            path=error.path,
            original_error=None,
            extensions={"code": "INTERNAL_SERVER_ERROR"},
        )


@functools.cache
def cost_model(schema: GraphQLSchema) -> CostModel:
    """One reading of the cost directives per schema (executors are made per app and per test)."""
    return CostModel(schema)


def database_error(fault: DatabaseFault, error: GraphQLError | None = None) -> GraphQLError:
    """The error a client gets for a database fault: its message and stable code."""
    return GraphQLError(
        str(fault),
        nodes=error.nodes if error else None,
        path=error.path if error else None,
        original_error=None,
        extensions={"code": fault.code},
    )


def _path(error: GraphQLError) -> str:
    return ".".join(map(str, error.path or ()))


# The limits' own messages say what was exceeded; a person also needs to know what to change.
LIMIT_MESSAGES = (
    (re.compile(r"exceeds maximum operation depth of \d+$"), "BATCHERY_MAX_QUERY_DEPTH"),
    (re.compile(r"aliases found\. Allowed: \d+$"), "BATCHERY_MAX_ALIASES"),
    (re.compile(r"Document contains more than \d+ tokens\.?"), "BATCHERY_MAX_QUERY_TOKENS"),
)


def name_the_setting(error: GraphQLError) -> GraphQLError:
    for pattern, setting in LIMIT_MESSAGES:
        if pattern.search(error.message):
            error.message = f"{error.message.rstrip('.')} (a server limit, set by {setting})."
            break
    return error
