"""`POST /api/batch`: many REST calls in one request, routed in-process, answered in order.

    {"operations": [{"method": "POST", "path": "/api/bakeries", "body": {...},
                     "headers": {"Idempotency-Key": "..."}}, ...]}
 -> {"results": [{"status": 201, "body": {...}, "headers": {"Location": "..."}}, ...]}

Operations run one after another, in the order sent, each as its own request (its own
transaction): a later operation sees what an earlier one wrote, and a failure stays in its own
result. Only the resource routes can be batched; `/api/batch` itself is not found inside a batch.
Status of the whole: 200 when every operation succeeded, 207 otherwise, 400 (413 over the limit)
when the batch itself is malformed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Scope

from app.db.faults import database_fault
from app.http.access import BATCHED, REQUEST_ID
from app.http.faults import log_fault, retry_after
from app.http.rest.costs import charge_rest, sub_call_cost
from app.http.rest.idempotency import idempotent
from app.http.rest.io import JSON, ApiRouter, HttpError, bad_request, json_response, read_json
from app.http.rest.resources import resource_fallbacks, resource_routes
from app.http.throttle import PREPAID, with_rate_headers
from app.words import counted

logger = logging.getLogger("batchery.rest")

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
OPERATION_KEYS = ("method", "path", "body", "headers")
API_ROOT = "/api"
# Response headers a sub-result shows; the rest describe the outer response, not this one.
HIDDEN_HEADERS = {"content-type", "content-length"}

resources = ApiRouter(resource_routes(), resource_fallbacks())


@dataclass(frozen=True, slots=True)
class SubRequest:
    method: str
    path: str
    body: Any
    headers: dict[str, str]


async def batch_endpoint(request: Request) -> Response:
    settings = request.app.state.settings
    try:
        body = await read_json(request, settings.max_body_bytes)
        operations = parse_operations(body, settings.rest_batch_max_operations)
        # The whole batch is paid for before its first call runs: all of it, or nothing.
        cost = sum(
            sub_call_cost(op.method, op.path, op.body, settings.max_page_size) for op in operations
        )
        paid = await charge_rest(request, cost, len(operations))
    except HttpError as error:
        return error.response()

    async def work() -> Response:
        results = [await dispatch(request, operation) for operation in operations]
        succeeded = all(
            200 <= result["status"] < 300 and result["status"] != 207 for result in results
        )
        return json_response({"results": results}, 200 if succeeded else 207)

    return with_rate_headers(await idempotent(request, body, work, scope="rest-batch"), paid)


def parse_operations(body: Any, limit: int) -> list[SubRequest]:
    if not isinstance(body, dict) or set(body) != {"operations"}:
        raise bad_request('the body must be {"operations": [...]}')
    operations = body["operations"]
    if not isinstance(operations, list) or not operations:
        raise bad_request("operations must be a non-empty list", "operations")
    if len(operations) > limit:
        raise HttpError(
            413,
            "TOO_MANY_OPERATIONS",
            f"a batch holds at most {counted(limit, 'operation')}, got {len(operations)}; "
            "split it into "
            "several batches (limit set by BATCHERY_REST_BATCH_MAX_OPERATIONS)",
            "operations",
        )
    return [
        _parse_operation(operation, f"operations[{i}]") for i, operation in enumerate(operations)
    ]


def _parse_operation(value: Any, at: str) -> SubRequest:
    if not isinstance(value, dict):
        raise bad_request(f"{at} must be an object with method and path", at)
    unknown = [key for key in value if key not in OPERATION_KEYS]
    if unknown:
        raise bad_request(
            f"unknown key {unknown[0]!r} in {at}; expected {', '.join(OPERATION_KEYS)}",
            f"{at}.{unknown[0]}",
        )
    method = value.get("method")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise bad_request(f"{at}.method must be one of {', '.join(METHODS)}", f"{at}.method")
    path = value.get("path")
    if not isinstance(path, str) or not path.startswith("/") or not path.isascii():
        raise bad_request(
            f"{at}.path must be a path starting with /, e.g. /api/bakeries", f"{at}.path"
        )
    headers = value.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k.isascii() and v.isascii()
        for k, v in headers.items()
    ):
        raise bad_request(f"{at}.headers must map header names to string values", f"{at}.headers")
    return SubRequest(method.upper(), path, value.get("body"), headers)


async def dispatch(outer: Request, operation: SubRequest) -> dict[str, Any]:
    """Runs one operation through the resource routes as if it had come on its own."""
    path, _, query = operation.path.partition("?")
    if path.rstrip("/") == f"{API_ROOT}/batch":
        return _result(
            404,
            {"error": {"code": "NOT_FOUND", "message": "a batch cannot contain /api/batch"}},
            {},
        )
    body = b"" if operation.body is None else orjson.dumps(operation.body)
    headers = {name.lower(): value for name, value in operation.headers.items()}
    if body:
        headers.setdefault("content-type", JSON)
        headers["content-length"] = str(len(body))
    scope: Scope = {
        "type": "http",
        "asgi": outer.scope.get("asgi", {"version": "3.0"}),
        "http_version": "1.1",
        "method": operation.method,
        "scheme": outer.url.scheme,
        "server": outer.scope.get("server"),
        "client": outer.scope.get("client"),
        "root_path": API_ROOT,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
        ],
        "app": outer.app,
        "state": outer.scope.get("state", {}),
        # The batch runs as its caller, in its request: a sub-request's own Authorization header
        # is not read. Its writes need `bulk` (app/http/rest/access.py).
        "user": outer.scope.get("user"),
        "auth": outer.scope.get("auth"),
        REQUEST_ID: outer.scope.get(REQUEST_ID),
        BATCHED: True,
        PREPAID: True,
    }
    return await _call(scope, body)


async def _call(scope: Scope, body: bytes) -> dict[str, Any]:
    sent = False
    status = 500
    response_headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            for name, value in message.get("headers", []):
                response_headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await resources(scope, receive, send)
    except Exception as failure:
        fault = database_fault(failure)
        if fault is not None:
            log_fault(fault, failure)
            error = {"code": fault.code, "message": str(fault)}
            return _result(503, {"error": error}, retry_after(fault))
        logger.exception("batched %s %s failed", scope["method"], scope["path"])
        error = {"code": "INTERNAL", "message": "an unexpected fault stopped this operation"}
        return _result(500, {"error": error}, {})
    content = b"".join(chunks)
    if not content:
        payload = None
    elif response_headers.get("content-type", "").startswith(JSON):
        payload = orjson.loads(content)
    else:
        payload = content.decode("utf-8", "replace")
    return _result(status, payload, response_headers)


def _result(status: int, body: Any, headers: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = {"status": status, "body": body}
    shown = {name: value for name, value in headers.items() if name not in HIDDEN_HEADERS}
    if shown:
        result["headers"] = shown
    return result
