"""The REST façade (contract/bulk.md): `/api/bakeries`, `/api/cake-orders`, and `/api/batch`,
on the same bulk engine as the GraphQL mutations. See docs/bulk.md for every route."""

from __future__ import annotations

from starlette.routing import Mount, Route

from app.http.rest.batch import batch_endpoint
from app.http.rest.io import ApiRouter
from app.http.rest.jobs import job_routes
from app.http.rest.keys import key_routes
from app.http.rest.resources import resource_fallbacks, resource_routes

api = ApiRouter(
    [
        Route("/batch", batch_endpoint, methods=["POST"]),
        *resource_routes(),
        *key_routes(),
        *job_routes(),
    ],
    resource_fallbacks(),
)


def rest_mount() -> Mount:
    return Mount("/api", app=api)
