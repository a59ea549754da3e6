"""From what a client sent (a JSON value, or GET parameters) to the list of operations to run.

A batch as a whole is refused only when it is not a batch at all (empty, an element that is not an
object, too many operations). An element whose parameters are wrong (no `query`, `variables` not an
object, ...) becomes an `Operation` that carries the problem: in a batch it is answered in its own
response element, alone it is a 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from app.http.errors import bad_request, too_large
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
    """One operation as received: a request to run, or the reason it cannot be run."""

    request: GraphQLRequest | None
    problem: str | None = None
    code: str = "BAD_REQUEST"


def operations_from_payload(payload: Any, settings: Settings) -> tuple[list[Operation], bool]:
    """The operations of a POST body (or multipart `operations`) and whether it was a batch."""
    is_batch = check_shape(payload, settings)
    elements = payload if is_batch else [payload]
    return [operation_from_object(element) for element in elements], is_batch


def check_shape(payload: Any, settings: Settings) -> bool:
    """Refuse what is not one operation nor a batch of them; True for a batch."""
    if isinstance(payload, dict):
        return False
    if not isinstance(payload, list):
        raise bad_request(f"The request is {json_type(payload)}. {SHAPE}")
    if not payload:
        raise bad_request(f"The batch is an empty array: it has no operation to run. {SHAPE}")
    if len(payload) > settings.max_batch_operations:
        raise too_large(
            f"The batch has {counted(len(payload), 'operation')}, more than this server runs in "
            "one request; split it into several requests",
            "TOO_MANY_OPERATIONS",
            "max_batch_operations",
            settings.max_batch_operations,
        )
    for index, element in enumerate(payload):
        if not isinstance(element, dict):
            raise bad_request(
                f"Element {index} of the batch is {json_type(element)}, not an object. {SHAPE}"
            )
    return True


def operation_from_object(params: Mapping[str, Any]) -> Operation:
    query = params.get("query")
    variables = params.get("variables")
    operation_name = params.get("operationName")
    extensions = params.get("extensions")
    for name, value, expected in (
        ("variables", variables, dict),
        ("operationName", operation_name, str),
        ("extensions", extensions, dict),
    ):
        if value is not None and not isinstance(value, expected):
            kind = "an object" if expected is dict else "a string"
            return Operation(None, f"`{name}` must be {kind} or null, not {json_type(value)}.")
    if query is None:
        if isinstance(extensions, dict) and "persistedQuery" in extensions:
            return Operation(
                None,
                "Persisted queries are not supported: send the document in `query`.",
                "PERSISTED_QUERY_NOT_SUPPORTED",
            )
        return Operation(None, "The operation has no `query`: send the GraphQL document in it.")
    if not isinstance(query, str):
        return Operation(
            None, f"`query` must be a string (a GraphQL document), not {json_type(query)}."
        )
    return Operation(GraphQLRequest(query, variables, operation_name, extensions))


def operation_from_query_params(params: Mapping[str, str]) -> Operation:
    """A GET request: `variables` and `extensions` are JSON text in the query string."""
    decoded: dict[str, Any] = {
        "query": params.get("query"),
        "operationName": params.get("operationName"),
    }
    for name in ("variables", "extensions"):
        text = params.get(name)
        if text:
            try:
                decoded[name] = orjson.loads(text)
            except orjson.JSONDecodeError as error:
                raise bad_request(f"The `{name}` parameter is not valid JSON: {error}.") from None
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
