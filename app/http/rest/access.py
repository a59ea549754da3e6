"""Scopes on the REST façade, with the names the schema uses (schema/access.py), and its audit.

Reads need `read`; single-record writes `write`; bulk routes `bulk`, like their GraphQL twins;
a write inside `POST /api/batch` needs `bulk` (many writes in one request are a bulk write), a
read inside it `read`. A call refused for a scope gets 403 `FORBIDDEN` naming it and never runs;
inside a batch, only that sub-request is refused. Every write call that ran is audited (not
those refused before reaching the bulk engine).
"""

from __future__ import annotations

import functools

from starlette.requests import Request
from starlette.responses import Response

from app.http import audit
from app.http.access import BATCHED, caller_of
from app.http.metrics import Metrics
from app.http.rest.io import Handler, error_response
from schema.access import BULK, Caller, how_to_get

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def guarded(handler: Handler, scope: str, *, audited: bool = True) -> Handler:
    """`handler`, run only for callers with `scope`; its writes recorded in the audit trail
    (`audited=False`: the handler records its own, with what only it knows)."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        caller = caller_of(request)
        write = request.method in WRITE_METHODS
        needed = BULK if write and request.scope.get(BATCHED) else scope
        if needed not in caller.scopes:
            metrics: Metrics = request.app.state.metrics
            metrics.auth_refusals.labels("FORBIDDEN").inc()
            return forbidden(caller, needed, request)
        response = await handler(request)
        if audited and write and _ran(response.status_code):
            status = response.status_code
            outcome = "ok" if status < 300 else "error"
            action = f"{request.method} {request.url.path}"
            entry = audit.entry(request, "rest", action, outcome, str(status))
            await audit.write(request, request.app.state.engine, [entry])
        return response

    return endpoint


def _ran(status: int) -> bool:
    """The call reached the bulk engine: it succeeded, or a record failed there. Refusals before
    that (400, 401, 403, 413, 415, 429, 503) wrote nothing and are not audited."""
    return status < 300 or status in (404, 409, 422)


def forbidden(caller: Caller, scope: str, request: Request) -> Response:
    where = f"{request.method} {request.url.path}"
    if request.scope.get(BATCHED) and request.method in WRITE_METHODS:
        where += " inside POST /api/batch"
    if caller.authenticated:
        message = (
            f"{where} needs the scope {scope!r}, which {caller.id} does not have. "
            f"{how_to_get(caller)}."
        )
        return error_response(403, "FORBIDDEN", message, headers={"X-Missing-Scope": scope})
    message = (
        f"{where} needs a credential with the scope {scope!r}: send Authorization: Bearer <key>"
    )
    return error_response(
        401, "UNAUTHENTICATED", message, headers={"WWW-Authenticate": 'Bearer realm="batchery"'}
    )
