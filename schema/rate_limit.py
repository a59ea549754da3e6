"""`rateLimit`: the client's rate-limit budget, asked for in the query itself (GitHub's field).

The budget comes from the context (the transport charged the request before it ran, see
app/http/throttle.py); the cost of the operation asking comes from the operation's root value,
`OperationRoot`, which the transport passes to each operation it runs. Passed, not looked up: the
operations of one batch share their context but not their cost.

The resolver is synchronous, so the compiled executor runs it as any other root field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import strawberry
from strawberry.types import Info


@dataclass(frozen=True, slots=True)
class OperationRoot:
    """The root value of one operation: what the transport knew of it before running it."""

    requested_cost: int


@strawberry.type(
    description="The client's rate-limit budget: points per window, spent by each request's cost."
)
class RateLimit:
    cost: int = strawberry.field(
        description="What this operation was charged (its requested cost, in points)."
    )
    limit: int = strawberry.field(description="Points per window.")
    remaining: int = strawberry.field(
        description="Points left in the window once this request was charged (before what its "
        "operations did not use is given back; the x-ratelimit-remaining header is after)."
    )
    used: int = strawberry.field(description="Points spent in the window, this request included.")
    reset_at: datetime = strawberry.field(
        description="When the window ends and the whole budget is back."
    )


def resolve_rate_limit(info: Info) -> RateLimit | None:
    status = info.context.rate_limit
    if status is None:
        return None
    root = info.root_value
    cost = root.requested_cost if isinstance(root, OperationRoot) else 0
    return RateLimit(
        cost=cost,
        limit=status.limit,
        remaining=status.remaining,
        used=status.used,
        reset_at=datetime.fromtimestamp(math.ceil(status.reset_at), UTC),
    )
