"""`/api/keys`: API keys managed on the REST façade by `admin` callers (schema/keys.py's twin).

`GET /api/keys?first=` lists them (never the key), `POST /api/keys` `{"name", "scopes",
"expiresInDays"}` answers 201 with the key, shown this once, `POST /api/keys/{id}/revoke` refuses
it from the next request on, on every worker. Each needs `admin`. They are not reachable inside
`POST /api/batch`, which runs the resource routes only (there, a write needs `bulk`, and `bulk`
must never stand in for `admin`). The writes are audited like every REST write, and every call is
charged to the rate-limit budget like any other (app/http/rest/costs.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.db import keys
from app.http.rest.access import guarded
from app.http.rest.costs import charged
from app.http.rest.io import (
    HttpError,
    answers_errors,
    bad_request,
    json_response,
    query_int,
    read_json,
)
from schema.access import ADMIN, SCOPES


def key_json(info: keys.KeyInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "scopes": list(info.scopes),
        "createdAt": info.created_at.isoformat(),
        "expiresAt": info.expires_at.isoformat() if info.expires_at else None,
        "revokedAt": info.revoked_at.isoformat() if info.revoked_at else None,
    }


async def list_keys(request: Request) -> Response:
    first = min(query_int(request, "first", 100), request.app.state.settings.max_page_size)
    found = await keys.list_keys(request.app.state.engine, first)
    return json_response({"data": [key_json(info) for info in found]})


async def create_key(request: Request) -> Response:
    body = await read_json(request, request.app.state.settings.max_operations_bytes)
    if not isinstance(body, dict):
        raise bad_request('the body must be an object: {"name", "scopes", "expiresInDays"}')
    name, scopes, days = body.get("name"), body.get("scopes"), body.get("expiresInDays")
    if not isinstance(name, str):
        raise bad_request("name must be a string", "name")
    if not isinstance(scopes, list) or not all(s in SCOPES for s in scopes):
        raise bad_request(f"scopes must be a list of {', '.join(SCOPES)}", "scopes")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int)):
        raise bad_request("expiresInDays must be a whole number of days, or null", "expiresInDays")
    problem = keys.check_new_key(name, scopes, days)
    if problem is not None:
        raise bad_request(problem.message, problem.field)
    expires_in = timedelta(days=days) if days is not None else None
    new = await keys.create_key(
        request.app.state.engine, name.strip(), list(dict.fromkeys(scopes)), expires_in=expires_in
    )
    return json_response({"key": new.key, "apiKey": key_json(new.info)}, 201)


async def revoke_key(request: Request) -> Response:
    key_id = request.path_params["id"]
    revoked = await keys.revoke_key(request.app.state.engine, key_id)
    if revoked is None:
        raise HttpError(404, "NOT_FOUND", f"there is no API key with id {key_id[:40]!r}", "id")
    return json_response(key_json(revoked))


def key_routes() -> list[Route]:
    def admin(handler: Any) -> Any:
        return guarded(answers_errors(charged(handler)), ADMIN)

    return [
        Route("/keys", admin(list_keys), methods=["GET"]),
        Route("/keys", admin(create_key), methods=["POST"]),
        Route("/keys/{id}/revoke", admin(revoke_key), methods=["POST"]),
    ]
