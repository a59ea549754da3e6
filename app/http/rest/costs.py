"""What a REST call costs against the client's rate-limit budget, and charging it.

Priced as GraphQL prices the same work (schema/cost): a database round trip weighs 10 points (the
`@cost(weight: 10)` of every field that reads or writes the database), and each record read or
written 1 more (an object in a response). So `GET /api/bakeries/1` costs what
`{ bakery(id: "1") { name } }` costs, 11.

| call | points |
| --- | --- |
| `GET /api/{resource}?first=N` | 10 + N (N: default 100, capped by `BATCHERY_MAX_PAGE_SIZE`) |
| `POST /api/{resource}/bulk` | 10 + the number of `records` |
| `POST /api/bakeries/delete-many` | 10 + the number of `ids` |
| any other call (one record: GET, POST, PATCH, DELETE) | 11 |
| `GET /api/jobs?first=N` | 10 + N (N: default 20) |
| `POST /api/jobs` | 11, like `submitBulkJob` (a job's records are bounded by the jobs limits) |
| `POST /api/batch` | the sum of its calls, charged once before the first runs |

A malformed call is charged as a call on one record (it is only known to be malformed once read).
A call refused by the rate limit costs nothing and gets 429 with `Retry-After` and the
`x-ratelimit-*` headers; no part of it runs.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from app.http.rest.io import Handler, HttpError
from app.http.throttle import THROTTLED, Throttled, charge, with_rate_headers
from app.ratelimit import Charge
from schema.directives import DATABASE

API = "rest"
DEFAULT_PAGE = 100  # `first` when a list call leaves it out (resources.py)
JOBS_PAGE = 20  # the same for `GET /api/jobs` (jobs.py)
ROUND_TRIP = DATABASE.weight  # a database round trip, as GraphQL's cost weighs it


def call_cost(
    method: str, path: str, query: Mapping[str, str], body: Any, max_page_size: int
) -> int:
    parts = [part for part in path.split("/") if part]
    if parts and parts[0] == "api":
        parts = parts[1:]
    return ROUND_TRIP + _records(method, parts, query, body, max_page_size)


def _records(
    method: str, parts: list[str], query: Mapping[str, str], body: Any, max_page_size: int
) -> int:
    """How many records the call may read or write."""
    if method == "GET" and len(parts) == 1:
        default = JOBS_PAGE if parts[0] == "jobs" else DEFAULT_PAGE
        return _page(query.get("first"), max_page_size, default)
    if method == "POST" and len(parts) == 2 and parts[1] == "bulk":
        return _count(body, "records")
    if method == "POST" and len(parts) == 2 and parts[1] == "delete-many":
        return _count(body, "ids")
    return 1


def sub_call_cost(method: str, path_and_query: str, body: Any, max_page_size: int) -> int:
    """The cost of one call of a `/api/batch` (its path may carry a query string)."""
    path, _, query = path_and_query.partition("?")
    return call_cost(method, path, dict(parse_qsl(query)), body, max_page_size)


async def charge_rest(request: Request, cost: int, operations: int = 1) -> Charge | None:
    """Charge a REST request, or refuse it with 429 (as an `HttpError`)."""
    try:
        return await charge(request, cost, api=API, operations=operations)
    except Throttled as refusal:
        raise HttpError(429, THROTTLED, refusal.message, headers=refusal.headers) from None


async def charge_call(request: Request, body: Any = None) -> Charge | None:
    settings = request.app.state.settings
    cost = call_cost(
        request.method, request.url.path, request.query_params, body, settings.max_page_size
    )
    return await charge_rest(request, cost)


def charged(handler: Handler) -> Handler:
    """The handler of a call whose cost is known before its body is read."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        paid = await charge_call(request)
        return with_rate_headers(await handler(request), paid)

    return endpoint


def _page(raw: str | None, max_page_size: int, default: int = DEFAULT_PAGE) -> int:
    if raw is None:
        return min(default, max_page_size)
    if not raw.isascii() or not raw.isdigit():
        return 1
    return max(1, min(int(raw), max_page_size))


def _count(body: Any, key: str) -> int:
    items = body.get(key) if isinstance(body, dict) else None
    return max(1, len(items)) if isinstance(items, list) else 1
