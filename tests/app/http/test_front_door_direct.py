"""The front door's straight path to `/graphql` (app/http/front_door.py, `direct_path`) gives
the route the scope Starlette's exception middleware and router would have, and is taken only
when the stack below is Starlette's own."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.http.access import REQUEST_ID, KeyBackend
from app.http.front_door import FrontDoor
from app.http.metrics import Metrics
from app.settings import Settings

METHODS = ["GET", "POST"]


class Recorder:
    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(dict(scope))
        await PlainTextResponse("ok")(scope, receive, send)


def _app(direct: bool, **starlette: Any) -> tuple[Starlette, Recorder]:
    recorder = Recorder()
    door = Middleware(
        FrontDoor,
        metrics=Metrics(),
        backend=KeyBackend(Settings()),
        on_error=lambda conn, error: Response(status_code=401),
        cors={},
        direct_path="/graphql" if direct else None,
    )
    routes = [
        Route("/", lambda request: PlainTextResponse("root")),
        Route("/graphql", recorder, methods=METHODS),
    ]
    return Starlette(routes=routes, middleware=[door], **starlette), recorder


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = ExceptionMiddleware.__call__

    async def counted(
        self: ExceptionMiddleware, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if scope["type"] == "http":
            calls.append(1)
        await original(self, scope, receive, send)

    monkeypatch.setattr(ExceptionMiddleware, "__call__", counted)
    return calls


async def _post(app: Starlette, path: str = "/graphql", method: str = "POST") -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path, content=b"{}")


async def test_the_route_sees_the_scope_the_layers_would_have_given(monkeypatch):
    calls = _counting(monkeypatch)
    scopes = []
    for direct in (False, True):
        app, recorder = _app(direct)
        assert (await _post(app)).text == "ok"
        (scope,) = recorder.scopes
        scopes.append(scope)
    assert calls == [1]  # the layers ran for the first app only
    layered, straight = scopes
    assert layered.keys() == straight.keys()
    for key in layered:
        if key in ("app", "router", "route", "endpoint", "starlette.exception_handlers"):
            continue  # each app's own objects, compared by shape below
        if key in (REQUEST_ID, "state", "auth", "user"):
            continue
        assert layered[key] == straight[key], key
    assert straight["route"].path == "/graphql" and straight["router"] is straight["app"].router
    assert straight["endpoint"] is straight["route"].endpoint
    assert [set(h) for h in straight["starlette.exception_handlers"]] == [
        set(h) for h in layered["starlette.exception_handlers"]
    ]


async def test_another_method_or_path_goes_the_usual_way(monkeypatch):
    calls = _counting(monkeypatch)
    app, recorder = _app(True)
    assert (await _post(app, method="DELETE")).status_code == 405  # the route's own refusal
    assert (await _post(app, path="/", method="GET")).text == "root"
    assert calls == [1, 1] and not recorder.scopes


async def test_an_exception_handler_of_the_apps_own_turns_it_off(monkeypatch):
    calls = _counting(monkeypatch)

    async def teapot(request: Any, error: Exception) -> Response:
        return Response(status_code=418)

    app, _recorder = _app(True, exception_handlers={HTTPException: teapot})
    assert (await _post(app)).text == "ok"
    assert calls == [1]
