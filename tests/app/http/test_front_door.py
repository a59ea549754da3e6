"""The per-request path's shortcuts (app/http/front_door.py, the lone-operation path of
app/http/batch.py, app/main.py's `AppState`) keep what the layers they replace did."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import orjson
import pytest
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware

from app.http.front_door import vary_origin
from app.main import AppState
from tests.app.http.test_guards import GATED, gate, post_then_leave
from tests.helpers import graphql_scope

REQUEST_ID = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-type", b"application/json")],
        [(b"vary", b"Accept"), (b"content-type", b"application/json")],
        [(b"vary", b"Accept"), (b"x-one", b"1"), (b"vary", b"Cookie"), (b"x-two", b"2")],
    ],
)
async def test_without_origin_vary_is_what_starlettes_cors_middleware_writes(headers):
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    cors = CORSMiddleware(app=None, allow_origins=["http://app.example"])  # type: ignore[arg-type]
    message = {"type": "http.response.start", "status": 200, "headers": list(headers)}
    await cors.send(message, send, Headers(raw=[]))
    assert vary_origin(headers) == sent[0]["headers"]


async def test_every_answer_has_one_request_id_and_the_vary_of_cors(client):
    answers = [
        await client.post("/graphql", json={"query": "{ __typename }"}),
        await client.get("/nowhere"),  # 404 from the router
        await client.post("/graphql", headers={"Authorization": "Bearer nope"}, json={}),  # 401
        await client.put("/graphql"),  # the endpoint's own 405
    ]
    assert [a.status_code for a in answers] == [200, 404, 401, 405]
    for answer in answers:
        assert REQUEST_ID.fullmatch(answer.headers["x-request-id"])
        assert answer.headers.get_list("x-request-id") == [answer.headers["x-request-id"]]
        assert answer.headers["vary"] == "Origin"
    assert len({answer.headers["x-request-id"] for answer in answers}) == len(answers)


async def test_a_lone_operation_without_io_is_answered_without_listening_for_the_client(client):
    # It ends in its first step: no watcher reads `receive` for a disconnection.
    app = client.app  # type: ignore[attr-defined]
    received = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal received
        received += 1
        if received == 1:
            body = orjson.dumps({"query": "{ __typename }"})
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    loop = asyncio.get_running_loop()
    tasks: list[Any] = []

    def counting_factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        tasks.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting_factory)
    try:
        await app(graphql_scope("application/json"), receive, send)
    finally:
        loop.set_task_factory(None)
    assert sent[0]["status"] == 200
    assert orjson.loads(sent[1]["body"])["data"] == {"__typename": "Query"}
    assert received == 1
    assert tasks == []  # no task of its own, no watcher


async def test_a_lone_operation_that_waits_is_still_stopped_when_its_client_leaves(client):
    # The same request shape, an operation that waits for the database: it is watched.
    app = client.app  # type: ignore[attr-defined]
    reader = gate(app)
    sent = await post_then_leave(app, orjson.dumps({"query": GATED}), reader.entered)
    assert reader.cancelled and reader.passed == 0
    [error] = orjson.loads(sent[1]["body"])["errors"]
    assert error["extensions"]["code"] == "CLIENT_DISCONNECTED"


def test_app_state_reads_what_was_last_set_and_forgets_what_was_deleted():
    state = AppState()
    state.executor = "first"
    state.executor = "second"
    assert state.executor == "second"
    assert state._state == {"executor": "second"}
    del state.executor
    assert getattr(state, "executor", None) is None
    assert state._state == {}
