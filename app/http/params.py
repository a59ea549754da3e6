"""From what a client sent (a JSON value, or GET parameters) to the list of operations to run.

A batch as a whole is refused only when it is not a batch at all (empty, an element that is not an
object, too many operations). An element whose parameters are wrong (no `query`, `variables` not an
object, ...) becomes an `Operation` that carries the problem: in a batch it is answered in its own
response element, alone it is a 400.

Variable batching (the batching appendix drafted in graphql/graphql-over-http, Hot Chocolate 14):
`variables` may be a list of objects, and the request object then runs once per variable set. Each
set becomes an `Operation` of its own, tagged with where it came from (`requestIndex` in the array
body, `variableIndex` in the list), so everything downstream (planning, cost, limits, loaders, the
`batch_mutations` rule) treats a variable set exactly like an operation of a JSON-array batch. A
set that is not an object fails alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from app.http.errors import bad_request, too_large
from app.persisted.ids import HEX64, SHA256_PREFIX, apq_id, is_sha256_id
from app.settings import Settings
from app.words import counted
from schema.execution import GraphQLRequest

SHAPE = (
    "Send one operation as a JSON object "
    '({"query": "...", "variables": {...}, "operationName": "..."}) '
    "or a batch as a non-empty JSON array of such objects."
)


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation as received: a request to run, or the reason it cannot be run.

    `request_index`: its place in a JSON-array body (None when the body was one object);
    `variable_index`: its place in a `variables` list (None when `variables` was not a list)."""

    request: GraphQLRequest | None
    problem: str | None = None
    code: str = "BAD_REQUEST"
    request_index: int | None = None
    variable_index: int | None = None


@dataclass(frozen=True, slots=True)
class Layout:
    """How the answer is laid out: `batch` when the body was an array; `variable_batch` when a
    request object had a list of variable sets. A plain request answers one object and a plain
    JSON-array batch today's array; as soon as a variable list is in it, each entry carries its
    `requestIndex`/`variableIndex` (the draft appendix's index fields)."""

    batch: bool
    variable_batch: bool = False

    @property
    def many(self) -> bool:
        """Answered as a list (or a stream) rather than one response."""
        return self.batch or self.variable_batch

    def indexes(self, operation: Operation) -> dict[str, int]:
        """The index fields of this operation's entry (the draft's names, in its order)."""
        fields: dict[str, int] = {}
        if operation.request_index is not None:
            fields["requestIndex"] = operation.request_index
        if operation.variable_index is not None:
            fields["variableIndex"] = operation.variable_index
        return fields

    def entry(self, operation: Operation, response: dict[str, Any]) -> dict[str, Any]:
        """An operation's response as an element of the answer: with its index fields when a
        variable list is in the request (a plain batch keeps today's bare responses)."""
        if not self.variable_batch:
            return response
        return {**self.indexes(operation), **response}


def operations_from_payload(payload: Any, settings: Settings) -> tuple[list[Operation], Layout]:
    """The operations of a POST body (or multipart `operations`), one per variable set, and how
    the answer is laid out."""
    is_batch = check_shape(payload, settings)
    elements = payload if is_batch else [payload]
    operations: list[Operation] = []
    for index, element in enumerate(elements):
        operations.extend(_expand(element, index if is_batch else None))
    variable_batch = any(operation.variable_index is not None for operation in operations)
    return operations, Layout(is_batch, variable_batch)


def check_shape(payload: Any, settings: Settings) -> bool:
    """Refuse what is not one operation nor a batch of them; True for a batch. Variable sets
    count like operations against `max_batch_operations`."""
    if isinstance(payload, dict):
        _check_count(executions(payload), settings)
        return False
    if not isinstance(payload, list):
        raise bad_request(f"The request is {json_type(payload)}. {SHAPE}")
    if not payload:
        raise bad_request(f"The batch is an empty array: it has no operation to run. {SHAPE}")
    _check_count(len(payload), settings)  # before looking into a huge array's elements
    for index, element in enumerate(payload):
        if not isinstance(element, dict):
            raise bad_request(
                f"Element {index} of the batch is {json_type(element)}, not an object. {SHAPE}"
            )
    _check_count(sum(executions(element) for element in payload), settings)
    return True


def executions(element: Mapping[str, Any]) -> int:
    """How many times a request object runs: once per variable set, at least once."""
    variables = element.get("variables")
    return max(1, len(variables)) if isinstance(variables, list) else 1


def _check_count(count: int, settings: Settings) -> None:
    if count > settings.max_batch_operations:
        raise too_large(
            f"The request has {counted(count, 'operation')} (each variable set of a variable "
            "batch counts as one), more than this server runs in one request; split it into "
            "several requests",
            "TOO_MANY_OPERATIONS",
            "max_batch_operations",
            settings.max_batch_operations,
        )


def _expand(element: Mapping[str, Any], request_index: int | None) -> list[Operation]:
    """One operation per variable set of a request object (one when `variables` is no list)."""
    variables = element.get("variables")
    if not isinstance(variables, list):
        return [_at(operation_from_object(element), request_index, None)]
    if not variables:
        problem = "`variables` is an empty list: give at least one variable set, or an object."
        return [Operation(None, problem, request_index=request_index)]
    for variable_index, variable_set in enumerate(variables):
        if not isinstance(variable_set, dict):
            # The request object is malformed (the draft: each item MUST be a map), not one of
            # its executions: refused whole, like `variables` of any other wrong type (alone a
            # 400, as the graphql-http audit expects of an array `variables`).
            problem = (
                f"Variable set {variable_index} is {json_type(variable_set)}: `variables` must "
                "be an object, or a list of objects (a variable batch)."
            )
            return [Operation(None, problem, request_index=request_index)]
    return [
        _at(operation_from_object({**element, "variables": variable_set}), request_index, index)
        for index, variable_set in enumerate(variables)
    ]


def _at(operation: Operation, request_index: int | None, variable_index: int | None) -> Operation:
    if request_index is None and variable_index is None:
        return operation  # as made: `operation_from_object` sets no index
    return Operation(
        operation.request, operation.problem, operation.code, request_index, variable_index
    )


def operation_from_object(params: Mapping[str, Any]) -> Operation:
    query = params.get("query")
    variables = params.get("variables")
    operation_name = params.get("operationName")
    extensions = params.get("extensions")
    if (
        type(query) is str
        and extensions is None
        and params.get("documentId") is None
        and (variables is None or type(variables) is dict)
        and (operation_name is None or type(operation_name) is str)
    ):
        # The usual request, nothing to check further (the checks below would all pass).
        return Operation(GraphQLRequest(query, variables, operation_name))
    for name, value, expected in (
        ("variables", variables, dict),
        ("operationName", operation_name, str),
        ("extensions", extensions, dict),
    ):
        if value is not None and not isinstance(value, expected):
            kind = "an object" if expected is dict else "a string"
            return Operation(None, f"`{name}` must be {kind} or null, not {json_type(value)}.")
    document_id, problem = persisted_id(params.get("documentId"), extensions)
    if problem is not None:
        return Operation(None, problem)
    if query is None and document_id is None:
        return Operation(None, "The operation has no `query`: send the GraphQL document in it.")
    if query is not None and not isinstance(query, str):
        return Operation(
            None, f"`query` must be a string (a GraphQL document), not {json_type(query)}."
        )
    # A persisted document's text is filled in from the store (app/http/persisted.py).
    return Operation(GraphQLRequest(query, variables, operation_name, extensions, document_id))


def persisted_id(
    document_id: Any, extensions: Mapping[str, Any] | None
) -> tuple[str | None, str | None]:
    """The document id a request names (`documentId`, or APQ's `extensions.persistedQuery`),
    or the problem with how it names it."""
    persisted = (extensions or {}).get("persistedQuery")
    if document_id is not None and (not isinstance(document_id, str) or not document_id):
        return None, f"`documentId` must be a non-empty string, not {json_type(document_id)}."
    if (
        isinstance(document_id, str)
        and document_id[:7].lower() == SHA256_PREFIX
        and not is_sha256_id(document_id)
    ):
        # A miss would tell the client to send the text with this id: a registration that
        # can only fail. Say what a sha256 id is instead.
        shown = document_id if len(document_id) <= 80 else document_id[:80] + "..."
        return None, (
            f"`documentId` {shown!r} is not a SHA-256 document id: write `sha256:` and the 64 "
            "lower-case hex digits of the document's SHA-256 (GraphQL over HTTP, Appendix A)."
        )
    if persisted is None:
        return document_id, None
    sha = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
    if not isinstance(sha, str) or HEX64.fullmatch(sha.lower()) is None:
        return None, (
            "`extensions.persistedQuery` must be "
            '{"version": 1, "sha256Hash": "<64 hex digits>"} (Apollo automatic persisted queries).'
        )
    if persisted.get("version", 1) != 1:
        return None, "Only version 1 of `extensions.persistedQuery` is known."
    hashed = apq_id(sha)
    if document_id is not None and document_id != hashed:
        return None, (
            f"`documentId` ({document_id}) and `extensions.persistedQuery.sha256Hash` name "
            "different documents: send one of them."
        )
    return hashed, None


def operation_from_query_params(params: Mapping[str, str]) -> Operation:
    """A GET request: `variables` and `extensions` are JSON text in the query string."""
    decoded: dict[str, Any] = {
        "query": params.get("query"),
        "operationName": params.get("operationName"),
        "documentId": params.get("documentId"),
    }
    for name in ("variables", "extensions"):
        text = params.get(name)
        if text:
            try:
                decoded[name] = orjson.loads(text)
            except orjson.JSONDecodeError as error:
                raise bad_request(f"The `{name}` parameter is not valid JSON: {error}.") from None
    if isinstance(decoded.get("variables"), list):
        raise bad_request(
            "`variables` is a list (a variable batch): send variable batches with POST."
        )
    return operation_from_object(decoded)


def parse_json(body: bytes, what: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise bad_request(f"{what} is not valid JSON: {error}.") from None


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"
