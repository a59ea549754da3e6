"""JSON in and out for the REST façade, and the small router it runs on.

Every refusal is a JSON body `{"error": {"code", "message", "field"?}}` with the right 4xx status,
so a client (or a `POST /api/batch` result) always gets something it can act on.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from app.db.faults import database_fault
from app.db.models import INT_MAX
from app.http.faults import fault_response, log_fault

JSON = "application/json"


class HttpError(Exception):
    """A refusal with its status; raised anywhere in a handler, answered by `handle`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message, self.field, self.headers)


def bad_request(message: str, field: str | None = None) -> HttpError:
    return HttpError(400, "BAD_REQUEST", message, field)


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(payload), status, headers=headers, media_type=JSON)


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return json_response({"error": error}, status, headers)


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request's JSON body; 415, 413 or 400 (with the reason) when it cannot be had."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != JSON:
        raise HttpError(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the body as JSON with the header Content-Type: application/json",
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
    if not body:
        raise bad_request("the request needs a JSON body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise bad_request(f"the body is not valid JSON: {error}") from None


def _too_large(max_bytes: int) -> HttpError:
    return HttpError(413, "PAYLOAD_TOO_LARGE", f"the body is larger than {max_bytes} bytes")


def query_int(request: Request, name: str, default: int, *, minimum: int = 0) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not minimum <= int(raw) <= INT_MAX:
        raise bad_request(
            f"{name} must be a whole number from {minimum} to {INT_MAX}, got {raw!r}", name
        )
    return int(raw)


class ApiRouter:
    """Routes like Starlette's Router, but unknown paths and methods get JSON errors, and it is a
    plain ASGI app: the request keeps the application (and its state) it came through."""

    def __init__(self, routes: Sequence[Route], fallbacks: Sequence[Route] = ()) -> None:
        self.routes = list(routes)
        # Tried only when no route matches the path at all (then a wrong method stays a 405):
        # they explain a path that is almost right, e.g. `/bakeries/-1`.
        self.fallbacks = list(fallbacks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        allowed: set[str] = set()
        for route in self.routes:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and route.methods:
                allowed |= route.methods
        if allowed:
            methods = ", ".join(sorted(allowed))
            response = error_response(
                405,
                "METHOD_NOT_ALLOWED",
                f"{scope['method']} is not allowed here; use {methods}",
                headers={"Allow": methods},
            )
        else:
            for route in self.fallbacks:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child_scope)
                    await route.handle(scope, receive, send)
                    return
            response = error_response(
                404, "NOT_FOUND", f"no API route at {scope['method']} {scope['path']}"
            )
        await response(scope, receive, send)


Handler = Callable[[Request], Awaitable[Response]]


def answers_errors(handler: Handler) -> Handler:
    """The endpoint, with every `HttpError` it raises turned into its JSON response."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except HttpError as error:
            return error.response()
        except Exception as error:
            fault = database_fault(error)
            if fault is None:
                raise
            log_fault(fault, error)
            return fault_response(fault, rest=True)

    return endpoint
