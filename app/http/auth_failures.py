"""Key guessing is rate limited: refused credentials are counted per client address.

A wrong key costs the server a database look-up and tells the client one key that is not valid:
unbounded, that is a brute-force search. With rate limiting on, every refused credential (401:
unknown, revoked, malformed, an invalid JWT) is counted against its address (its /64 for IPv6,
as `app/http/identity.py` reads it) in a counter of its own in the same limiter and storage as
the request budgets: each costs budget//`BATCHERY_RATE_LIMIT_AUTH_FAILURES` points, so that many
fit in a window. An address that cannot afford one more is answered 429 (`Retry-After`: the
window's end) for every credential it presents until then, before the credential is checked, a
right one too: a right key answered while wrong ones get 429 would still tell a guess apart.

The cost for the requests that present a credential: one counter read (memory, or one Redis
round trip). Requests without a credential are not counted (required mode answers them 401 with
no look-up), nor are credentials that cannot be checked now (503). A WebSocket presenting its
key in `connection_init` is counted the same way (app/http/subscriptions.py; closed with 4429).
"""

from __future__ import annotations

from starlette.authentication import AuthCredentials, BaseUser
from starlette.requests import HTTPConnection

from app.http.access import KeyBackend, TooManyFailures, Unauthenticated, Unverifiable
from app.http.identity import UNKNOWN_ADDRESS, client_network
from app.http.throttle import limiter_of
from app.ratelimit import RateLimiter
from app.settings import Settings

SETTING = "BATCHERY_RATE_LIMIT_AUTH_FAILURES"


class GuardedKeyBackend(KeyBackend):
    """`KeyBackend`, with the refused credentials of each address counted and capped."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        if conn.scope["type"] != "http" or "authorization" not in conn.headers:
            return await super().authenticate(conn)
        refusal = await too_many_failures(conn, self.settings)
        if refusal is not None:
            raise refusal
        try:
            return await super().authenticate(conn)
        except Unverifiable:
            raise
        except Unauthenticated as refused:
            if refused.presented:
                await count_failure(conn, self.settings)
            raise


async def too_many_failures(conn: HTTPConnection, settings: Settings) -> TooManyFailures | None:
    """The refusal for an address that cannot afford another refused credential, if it cannot
    (None too when rate limiting is off, or its storage does not answer)."""
    limiter = limiter_of(conn)
    if limiter is None:
        return None
    status = await limiter.status(failures_key(conn))
    if status is None or status.remaining >= _cost(limiter, settings):
        return None
    allowed = settings.rate_limit_auth_failures
    retry_after = status.retry_after()
    window = limiter.budget.describe().partition(" per ")[2]
    # The setting first: a WebSocket close reason keeps only 123 bytes.
    return TooManyFailures(
        f"{SETTING}: over {allowed} refused credentials from this address per {window}; "
        f"every credential from it is refused for {retry_after} s more.",
        retry_after,
    )


async def count_failure(conn: HTTPConnection, settings: Settings) -> None:
    limiter = limiter_of(conn)
    if limiter is not None:
        await limiter.charge(failures_key(conn), _cost(limiter, settings))


def _cost(limiter: RateLimiter, settings: Settings) -> int:
    # Rounded down, so that `rate_limit_auth_failures` of them fit in the budget.
    return max(1, limiter.budget.points // settings.rate_limit_auth_failures)


def failures_key(conn: HTTPConnection) -> str:
    client = conn.client
    return "auth-failures:" + client_network(client.host if client else UNKNOWN_ADDRESS)
