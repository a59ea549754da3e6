"""`Idempotency-Key` on the REST façade: the first response (status and body) to a keyed request
is stored in the database and given again, marked `Idempotent-Replayed: true`, to a retry of the
same request (same method, path, query and JSON body). Another request under the same key gets
422, a retry while the first is still running 409."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from app.bulk.idempotency import HEADER, IdempotencyError, fingerprint
from app.bulk_settings import idempotency_store
from app.http.access import caller_of
from app.http.rest.io import JSON, error_response

REPLAYED = "Idempotent-Replayed"


async def idempotent(
    request: Request, body: Any, work: Callable[[], Awaitable[Response]], *, scope: str = "rest"
) -> Response:
    key = request.headers.get(HEADER)
    if key is None:
        return await work()
    caller = caller_of(request)
    if caller.authenticated:
        # A key's Idempotency-Keys are its own: another caller never gets its stored responses.
        scope = f"{caller.id}|{scope}"
    state = request.app.state
    store = idempotency_store(state.engine, state.settings)
    request_fingerprint = fingerprint(
        [request.method, request.url.path, str(request.url.query), body]
    )
    try:
        stored = await store.claim(key, scope, request_fingerprint)
    except IdempotencyError as error:
        return error_response(error.status, error.code, str(error))
    if stored is not None:
        return Response(stored.body, stored.status, media_type=JSON, headers={REPLAYED: "true"})
    try:
        response = await work()
    except BaseException:
        await store.release(key, scope)
        raise
    if response.status_code >= 500:
        # A fault, with nothing written: the retry should run, not get the fault again.
        await store.release(key, scope)
    else:
        await store.complete(key, scope, response.status_code, bytes(response.body).decode())
    return response
