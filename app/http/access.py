"""Who is calling: the request id, the caller from `Authorization: Bearer <key or JWT>`, the 401s.

Every HTTP request gets an id (answered as `X-Request-Id`; the audit trail records it) from
app/http/front_door.py, which also runs `KeyBackend` (Starlette's `AuthenticationMiddleware`
contract; WebSockets go through that middleware itself): a request that presents a
credential is held to it in every mode (unknown, malformed, revoked or expired: 401 with
`WWW-Authenticate: Bearer` and code `UNAUTHENTICATED`); one that presents none is `ANONYMOUS` in
open mode and refused in required mode, except on the public paths (health, metrics, GraphiQL's
page and assets). A bearer token shaped like a JWT is verified as one (app/http/jwt_auth.py)
when a key source is configured; anything else is an API key. Each key is looked up in the
database on every request that carries it (one statement by primary key), so a revocation
holds on every worker from the next request on.
"""

from __future__ import annotations

import math
import re

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.requests import HTTPConnection
from starlette.responses import Response

from app.db.keys import KeyProblem, check_key
from app.http.errors import RequestError
from app.http.graphiql import STATIC_PATH
from app.http.jwks import KeysUnavailable
from app.http.jwt_auth import JwtVerifier, TokenRefused, looks_like_jwt
from app.http.media import JSON, prefers_html, render
from app.http.metrics import Metrics
from app.settings import Settings
from schema.access import ANONYMOUS, Caller

REQUEST_ID = "batchery.request_id"
REQUEST_ID_HEADER = "X-Request-Id"
# Scope key set on the sub-requests of `POST /api/batch` (app/http/rest/batch.py).
BATCHED = "batchery.batched"
PUBLIC_PATHS = frozenset({"/", "/healthz", "/readyz", "/metrics"})
REALM = 'Bearer realm="batchery"'


def request_id_of(conn: HTTPConnection) -> str:
    return str(conn.scope.get(REQUEST_ID) or "none")


class CallerUser(BaseUser):
    """Starlette's `request.user`, carrying our `Caller`."""

    def __init__(self, caller: Caller) -> None:
        self.caller = caller

    @property
    def is_authenticated(self) -> bool:
        return self.caller.authenticated

    @property
    def display_name(self) -> str:
        return self.caller.id

    @property
    def identity(self) -> str:
        return self.caller.id


def caller_of(conn: HTTPConnection) -> Caller:
    user = conn.scope.get("user")
    return user.caller if isinstance(user, CallerUser) else ANONYMOUS


class Unauthenticated(AuthenticationError):
    def __init__(self, message: str, *, presented: bool) -> None:
        super().__init__(message)
        self.message = message
        self.presented = presented


class Unverifiable(Unauthenticated):
    """The credential cannot be checked now (the identity provider's keys are out of reach): a
    503 over HTTP, since the credential may well be good."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, presented=True)
        self.retry_after = retry_after


class TooManyFailures(Unauthenticated):
    """This address presented too many refused credentials this window: a 429, before the
    credential is even checked (app/http/auth_failures.py)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, presented=True)
        self.retry_after = retry_after


class KeyBackend(AuthenticationBackend):
    def __init__(self, settings: Settings, tokens: JwtVerifier | None = None) -> None:
        self.settings = settings
        self.tokens = tokens

    @property
    def open(self) -> bool:
        """Open mode: a request without a credential is anonymous whatever its path."""
        return self.settings.auth == "open"

    def anonymous(self) -> tuple[AuthCredentials, BaseUser]:
        """What `authenticate` gives a request without `Authorization`: in open mode, for any
        path, with no look-up (the front door skips the call for it)."""
        return AuthCredentials(sorted(ANONYMOUS.scopes)), CallerUser(ANONYMOUS)

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        if conn.scope["type"] == "websocket":
            # A WebSocket may present its key in its first message (connection_init) rather
            # than a header browsers cannot set: app/http/subscriptions.py decides, by the same
            # `authenticate_key` and with a close code the protocol defines.
            return None
        header = conn.headers.get("authorization")
        if header is None and self._public(conn):
            return self.anonymous()
        caller = await authenticate_key(conn.app.state.engine, self.settings, header, self.tokens)
        return AuthCredentials(sorted(caller.scopes)), CallerUser(caller)

    def _public(self, conn: HTTPConnection) -> bool:
        # The scope's path, not `conn.url.path`: that builds and parses the whole URL (host
        # header, query string) on every request, for the same answer to these comparisons
        # (the URL only escapes ?, # and \, which no public path holds).
        path = conn.scope["path"]
        if path in PUBLIC_PATHS or path.startswith(STATIC_PATH + "/"):
            return True
        # GraphiQL's page holds no data; its requests carry the key from its headers editor.
        return (
            path == "/graphql"
            and self.settings.graphiql
            and conn.scope.get("method") in ("GET", "HEAD")
            and "query" not in conn.query_params
            and prefers_html(conn.headers.get("accept"))
        )


async def authenticate_key(
    engine: AsyncEngine,
    settings: Settings,
    header: str | None,
    tokens: JwtVerifier | None = None,
) -> Caller:
    """The caller an `Authorization` value (None: absent) stands for: an API key, or a JWT when
    `tokens` verifies them; `Unauthenticated` when it is unknown, malformed, revoked or expired,
    or absent in required mode (`Unverifiable` when it cannot be checked now)."""
    if header is None:
        if settings.auth == "required":
            raise Unauthenticated(
                "This server requires an API key (BATCHERY_AUTH=required): send "
                "Authorization: Bearer <key> (create one with: batchery keys create).",
                presented=False,
            )
        return ANONYMOUS
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("The Authorization header must read 'Bearer <key>'.", presented=True)
    if looks_like_jwt(token):
        return await jwt_caller(tokens, token)
    found = await check_key(engine, token)
    if isinstance(found, KeyProblem):
        raise Unauthenticated(f"The bearer token {found.value}.", presented=True)
    return Caller(f"key:{found.id}", frozenset(found.scopes), authenticated=True)


async def jwt_caller(tokens: JwtVerifier | None, token: str) -> Caller:
    if tokens is None:
        raise Unauthenticated(
            "The bearer token looks like a JWT, but this server accepts none (no "
            "BATCHERY_JWT_JWKS_URL, BATCHERY_JWT_JWKS_FILE or BATCHERY_JWT_PUBLIC_KEY_FILE "
            "is set): send an API key.",
            presented=True,
        )
    try:
        return await tokens.caller(token)
    except TokenRefused as refused:
        raise Unauthenticated(
            f"The bearer token (a JWT) {refused.message}.", presented=True
        ) from None
    except KeysUnavailable as error:
        raise Unverifiable(
            f"The bearer token (a JWT) cannot be checked now: {error}. Retry later.",
            error.retry_after,
        ) from None


def unauthenticated_response(conn: HTTPConnection, error: Exception) -> Response:
    """401 in the shape of the API asked: REST's `{"error"}` or GraphQL's `{"errors"}` (503 when
    the credential cannot be checked now)."""
    if isinstance(error, Unverifiable):
        status, code = 503, UNVERIFIABLE
        headers = {"Retry-After": str(math.ceil(error.retry_after))}
    elif isinstance(error, TooManyFailures):
        status, code = 429, "THROTTLED"
        headers = {"Retry-After": str(math.ceil(error.retry_after))}
    else:
        status, code = 401, "UNAUTHENTICATED"
        headers = {"WWW-Authenticate": challenge(error)}
    message = getattr(error, "message", None) or str(error)
    metrics: Metrics = conn.app.state.metrics
    metrics.auth_refusals.labels(code).inc()
    if conn.url.path.startswith("/api/"):
        body = {"error": {"code": code, "message": message}}
        return render(body, JSON, status, headers)
    return render(RequestError(status, message, code).payload(), JSON, status, headers)


UNVERIFIABLE = "IDENTITY_PROVIDER_UNAVAILABLE"
# RFC 6750 3: error_description is printable ASCII without '"' and '\\'.
_NOT_IN_DESCRIPTION = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


def challenge(error: Exception) -> str:
    """`WWW-Authenticate`: the realm; for a credential that was presented, RFC 6750's
    `error="invalid_token"` and the reason (so a client sees it without reading the body)."""
    if not (isinstance(error, Unauthenticated) and error.presented):
        return REALM
    description = _NOT_IN_DESCRIPTION.sub("?", error.message.replace('"', "'"))
    return f'{REALM}, error="invalid_token", error_description="{description}"'
