"""`/graphql`: GraphiQL for browsers, and GraphQL over HTTP (single JSON operations).

Transport batching (JSON arrays, multipart) builds on this module; execution itself lives behind
`schema.execution.Executor`.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from graphql import ExecutionResult, OperationType
from starlette.requests import Request
from starlette.responses import Response

from app.http.graphiql import graphiql_page
from schema.context import Context
from schema.execution import Executor, GraphQLRequest

JSON = "application/json"


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(payload), status, headers=headers, media_type=JSON)


def error_response(
    status: int, message: str, code: str, headers: dict[str, str] | None = None
) -> Response:
    return json_response(
        {"errors": [{"message": message, "extensions": {"code": code}}]}, status, headers
    )


async def graphql_endpoint(request: Request) -> Response:
    if request.method == "GET":
        if "text/html" in request.headers.get("accept", "") and "query" not in request.query_params:
            return graphiql_page(str(request.url.path))
        return await _run_get(request)
    if request.headers.get("content-type", "").split(";")[0].strip() != JSON:
        return error_response(
            415, "Send the request as application/json.", "UNSUPPORTED_MEDIA_TYPE"
        )
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as error:
        return error_response(400, f"The body is not valid JSON: {error}", "BAD_REQUEST")
    if not isinstance(body, dict):
        return error_response(400, "The body must be a JSON object.", "BAD_REQUEST")
    operation = GraphQLRequest(
        query=body.get("query"),
        variables=body.get("variables"),
        operation_name=body.get("operationName"),
    )
    result = await _execute(request, operation, allow_mutations=True)
    return json_response(result.formatted)


async def _run_get(request: Request) -> Response:
    params = request.query_params
    try:
        variables = json.loads(params["variables"]) if params.get("variables") else None
    except json.JSONDecodeError as error:
        return error_response(400, f"`variables` is not valid JSON: {error}", "BAD_REQUEST")
    operation = GraphQLRequest(params.get("query"), variables, params.get("operationName"))
    result = await _execute(request, operation, allow_mutations=False)
    if result is None:
        return error_response(
            405, "Mutations must be sent with POST.", "METHOD_NOT_ALLOWED", {"Allow": "POST"}
        )
    return json_response(result.formatted)


async def _execute(request: Request, operation: GraphQLRequest, *, allow_mutations: bool) -> Any:
    executor: Executor = request.app.state.executor
    context = Context.create(
        request.app.state.engine,
        request.app.state.settings,
        reader=request.app.state.reader,
        request=request,
    )
    if operation.query is None:
        return await executor.run(operation, context)
    prepared = executor.prepare(operation.query)
    kind = prepared.operation_type(operation.operation_name)
    if not allow_mutations and kind is OperationType.MUTATION:
        return None
    result: ExecutionResult = await executor.execute(prepared, operation, context)
    return result
