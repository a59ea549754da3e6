"""The one middleware every HTTP request passes: its id, its metrics, CORS, database faults as
503s, and who is calling.

These were five middlewares (request id, metrics, Starlette's CORS, faults, Starlette's
authentication), each wrapping `send` and each reading the headers again: for `{ __typename }`
that was a third of the CPU of the request (docs/performance.md, issue 12 round three). Here the
request's headers are read once and `send` is wrapped once; what each layer did is unchanged, in
the same order (outermost first):

1. A fresh request id (`X-Request-Id`, never the client's: the audit trail must trust it).
2. Metrics: every response counted by status and timed by route template (a request that fails
   before answering counts as the 500 the client gets).
3. CORS (Starlette's `CORSMiddleware`, whose own logic answers preflights and sets the headers of
   requests with an `Origin`; without one, only `Vary: Origin` is added, as it would). Outside
   authentication: a preflight carries no credential, and a 401 (or a 503) must carry the CORS
   headers for a browser to let the page read it.
4. A database fault that escapes a route before its response started is a 503 with
   `Retry-After` (app/http/faults.py), never Starlette's `500 text/plain`. Outside
   authentication: checking a key reads the database, and an outage there is a 503 like any other.
5. Authentication (app/http/access.py's `KeyBackend`, through Starlette's `AuthenticationMiddleware`
   contract: `scope["auth"]`, `scope["user"]`, `on_error` answers). A request without
   `Authorization` in open mode is anonymous whatever its path: no look-up is made for it.

Other scope types (WebSocket, lifespan) go through Starlette's `AuthenticationMiddleware` as before.

`direct_path` (`/graphql`): a request for it goes straight to its route's application, with the
scope Starlette's `ExceptionMiddleware` and router would have given it (`route`, `endpoint`,
`path_params`, `router`, the exception handlers), not through them: ~7 us per request (a
`Request`, a wrapper and a closure per request, the routes' regexes). Only when the stack is
Starlette's own (exception handlers: its defaults, for `HTTPException` and
`WebSocketException`, which the GraphQL endpoint never raises: its refusals are responses), the
route is the first the router would match, and it answers the method; anything else goes the
usual way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from starlette.authentication import AuthCredentials, AuthenticationError, UnauthenticatedUser
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException, WebSocketException
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.routing import Match, Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db.faults import database_fault
from app.http.access import REQUEST_ID, KeyBackend
from app.http.faults import REST_PREFIX, fault_response, log_fault
from app.http.metrics import Metrics

REQUEST_ID_NAME = b"x-request-id"
VARY = b"vary"


class FrontDoor:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        backend: KeyBackend,
        on_error: Callable[[HTTPConnection, AuthenticationError], Response],
        cors: dict[str, Any],
        direct_path: str | None = None,
    ) -> None:
        self.app = app
        self.direct = _direct(app, direct_path) if direct_path is not None else None
        self.metrics = metrics
        self.backend = backend
        self.on_error = on_error
        # Its `send` and `preflight_response` decide the CORS headers; its app is never called.
        self.cors = CORSMiddleware(app, **cors)
        self.others = AuthenticationMiddleware(app, backend=backend, on_error=on_error)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.others(scope, receive, send)
            return
        began = time.perf_counter()
        # 128 random bits, as 32 hex digits (a fifth of `uuid4().hex`'s CPU).
        request_id = os.urandom(16).hex()
        scope[REQUEST_ID] = request_id
        request_id_value = request_id.encode()
        origin = authorization = preflight = False
        for name, _ in scope["headers"]:
            if name == b"origin":
                origin = True
            elif name == b"authorization":
                authorization = True
            elif name == b"access-control-request-method":
                preflight = True
        cors_headers = Headers(scope=scope) if origin else None
        status = 500  # what the client gets if the app fails before answering
        started = False
        simple = True  # a preflight's own answer is not a simple response's

        async def send_out(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message = dict(message)
                if cors_headers is None:
                    message["headers"] = vary_origin(message.get("headers", ()))
                elif simple:
                    await self.cors.send(message, _kept, cors_headers)
                headers = list(message.get("headers", ()))
                headers.append((REQUEST_ID_NAME, request_id_value))
                message["headers"] = headers
            await send(message)

        try:
            if cors_headers is not None and preflight and scope["method"] == "OPTIONS":
                simple = False
                await self.cors.preflight_response(cors_headers)(scope, receive, send_out)
                return
            if authorization or not self.backend.open:
                conn = HTTPConnection(scope)
                try:
                    found = await self.backend.authenticate(conn)
                except AuthenticationError as error:
                    await self.on_error(conn, error)(scope, receive, send_out)
                    return
                # None (what `KeyBackend` says of a WebSocket only): Starlette's defaults.
                scope["auth"], scope["user"] = found or (AuthCredentials(), UnauthenticatedUser())
            else:
                scope["auth"], scope["user"] = self.backend.anonymous()
            direct = self.direct
            if (
                direct is not None
                and scope["path"] == direct.route.path
                and not scope.get("root_path")
                and scope["method"] in direct.methods
            ):
                # What `ExceptionMiddleware`, `Router.app` and `Route.matches` put in the scope.
                scope["starlette.exception_handlers"] = direct.handlers
                if "router" not in scope:
                    scope["router"] = direct.router
                scope["route"] = direct.route
                scope["endpoint"] = direct.route.endpoint
                scope["path_params"] = dict(scope.get("path_params", {}))
                await direct.route.app(scope, receive, send_out)
                return
            await self.app(scope, receive, send_out)
        except Exception as error:
            fault = database_fault(error)
            if fault is None or started:
                raise
            log_fault(fault, error)
            rest = str(scope.get("path", "")).startswith(REST_PREFIX)
            await fault_response(fault, rest=rest)(scope, receive, send_out)
        finally:
            self.metrics.count_response(
                status, getattr(scope.get("route"), "path", None), time.perf_counter() - began
            )


class _Direct:
    __slots__ = ("handlers", "methods", "route", "router")

    def __init__(self, handlers: Any, router: Router, route: Route) -> None:
        self.handlers = handlers
        self.router = router
        self.route = route
        self.methods = frozenset(route.methods or ())


def _direct(app: ASGIApp, path: str) -> _Direct | None:
    """The route for `path` to call straight, if the stack below is the one whose work on the
    scope `FrontDoor.__call__` repeats; None otherwise (then nothing is skipped)."""
    if not isinstance(app, ExceptionMiddleware) or not isinstance(app.app, Router):
        return None
    handlers = (app._exception_handlers, app._status_handlers)
    defaults = {HTTPException: app.http_exception, WebSocketException: app.websocket_exception}
    if handlers[0] != defaults or handlers[1]:
        return None
    router = app.app
    if router.middleware_stack != router.app:
        return None
    scope = {"type": "http", "path": path, "root_path": "", "method": "POST"}
    for route in router.routes:
        if isinstance(route, Route) and route.path == path and route.methods:
            return _Direct(handlers, router, route)
        if route.matches(scope)[0] is not Match.NONE:
            return None  # an earlier route would take it
    return None


async def _kept(message: Message) -> None:
    """`CORSMiddleware.send`'s next step: the message it changed in place goes on from here."""


def vary_origin(headers: Any) -> list[tuple[bytes, bytes]]:
    """The headers with `Origin` added to `Vary`, as `CORSMiddleware` does for a request that
    has no `Origin`: the first `Vary` holds every value, the others go; none: one at the end."""
    listed = list(headers)
    found = [index for index, (name, _) in enumerate(listed) if name == VARY]
    if not found:
        listed.append((VARY, b"Origin"))
        return listed
    values = [listed[index][1] for index in found]
    for index in reversed(found[1:]):
        del listed[index]
    listed[found[0]] = (VARY, b", ".join([*values, b"Origin"]))
    return listed
