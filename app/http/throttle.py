"""Charging an HTTP request to its client's budget (app/ratelimit.py), before anything runs.

Both APIs call `charge` once per request, with the request's whole cost (GraphQL: the sum of its
operations' requested cost; REST: its records, see app/http/rest/costs.py). Over budget it raises
`Throttled`, which each API answers as a 429 in its own error shape, with `Retry-After` and the
`x-ratelimit-*` headers (GitHub's names); a request within budget gets the same headers on its
response. With rate limiting off (`BATCHERY_RATE_LIMIT_ENABLED=false`) nothing is charged and no
header is added.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from app.http.errors import RequestError
from app.http.identity import identify
from app.http.metrics import Metrics
from app.ratelimit import BUDGET_SETTING, Charge, RateLimiter, RateLimitStatus

THROTTLED = "THROTTLED"
# Set on the scope of the calls a `/api/batch` routes in-process: the batch paid for them.
PREPAID = "batchery.rate_limit_prepaid"


class Throttled(Exception):
    """A request over its client's budget: nothing of it may run."""

    def __init__(self, charge: Charge, limiter: RateLimiter) -> None:
        assert charge.status is not None
        status = charge.status
        self.charge = charge
        self.retry_after = status.retry_after()
        budget = limiter.budget
        if charge.cost <= 0:
            reason = (
                f"none of this client's {budget.describe()} is left; the budget is back in "
                f"full in {self.retry_after} s"
            )
        elif charge.cost > budget.points:
            reason = (
                f"this request costs {charge.cost} points, more than the whole budget of "
                f"{budget.describe()}: split it into smaller requests"
            )
        else:
            reason = (
                f"this request costs {charge.cost} points and {status.remaining} of this "
                f"client's {budget.describe()} are left; the budget is back in full in "
                f"{self.retry_after} s"
            )
        self.message = f"Rate limit exceeded: {reason} (budget set by {BUDGET_SETTING})."
        super().__init__(self.message)
        self.headers = {**rate_headers(status), "Retry-After": str(self.retry_after)}
        self.extensions: dict[str, Any] = {
            "cost": charge.cost,
            "limit": status.limit,
            "remaining": status.remaining,
            "resetAt": reset_at_iso(status),
            "retryAfter": self.retry_after,
            "setting": BUDGET_SETTING,
        }

    def request_error(self) -> RequestError:
        """The GraphQL transport's refusal of the whole request: 429, nothing of it runs."""
        return RequestError(
            429, self.message, THROTTLED, headers=self.headers, extensions=self.extensions
        )


def limiter_of(request: HTTPConnection) -> RateLimiter | None:
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    return limiter


async def charge(
    request: HTTPConnection, cost: int, *, api: str, operations: int = 1
) -> Charge | None:
    """Spend `cost` points of the client's budget, or raise `Throttled` (counted in the metrics
    with its `operations`). None when rate limiting is off or the request was paid for."""
    limiter = limiter_of(request)
    if limiter is None or request.scope.get(PREPAID):
        return None
    identity = identify(request, request.app.state.identity_source)
    charged = await limiter.charge(identity.key, cost)
    if not charged.allowed:
        metrics: Metrics = request.app.state.metrics
        metrics.record_throttled(api, operations)
        raise Throttled(charged, limiter)
    return charged


async def refuse_if_spent(request: HTTPConnection, *, api: str, operations: int = 1) -> None:
    """Raise `Throttled` when the client has no points left: any charge would be refused, so
    the work that finds the request's cost (parsing new documents) need not be done."""
    limiter = limiter_of(request)
    if limiter is None or request.scope.get(PREPAID):
        return
    key = identify(request, request.app.state.identity_source).key
    status = await limiter.status(key)
    if status is None or status.remaining > 0:
        return
    metrics: Metrics = request.app.state.metrics
    metrics.record_throttled(api, operations)
    raise Throttled(Charge(key, 0, False, status), limiter)


async def refund(request: Request, charged: Charge | None, points: int) -> Charge | None:
    """Give back `points` the request was charged but did not use; the charge, up to date."""
    limiter = limiter_of(request)
    if limiter is None or charged is None or charged.status is None or points <= 0:
        return charged  # nothing to give back to (a storage that failed counted nothing)
    status = await limiter.give_back(charged, points)
    return Charge(charged.key, charged.cost - points, charged.allowed, status)


def rate_headers(status: RateLimitStatus | None) -> dict[str, str]:
    if status is None:
        return {}
    return {
        "x-ratelimit-limit": str(status.limit),
        "x-ratelimit-remaining": str(status.remaining),
        "x-ratelimit-used": str(status.used),
        "x-ratelimit-reset": str(math.ceil(status.reset_at)),
    }


def with_rate_headers(response: Response, charged: Charge | None) -> Response:
    if charged is not None:
        response.headers.update(rate_headers(charged.status))
    return response


def throttle_status(status: RateLimitStatus) -> dict[str, Any]:
    """Shopify's `extensions.cost.throttleStatus`: the budget after this request."""
    return {
        "maximumAvailable": status.limit,
        "currentlyAvailable": status.remaining,
        "restoreRate": status.limit / status.window_seconds,
    }


def reset_at_iso(status: RateLimitStatus) -> str:
    # The same form as `rateLimit { resetAt }` (Strawberry's DateTime).
    return datetime.fromtimestamp(math.ceil(status.reset_at), UTC).isoformat()
