"""Streamed batch answers (`application/jsonl`, `text/event-stream`, `multipart/mixed`): every
entry tagged with the draft appendix's index fields, written as soon as it is complete, and the
stream ended with nothing left running when the client goes.

Order of arrival and disconnection are tested over real HTTP: uvicorn serving the app in this
test's event loop, read by httpx as the bytes come (httpx's ASGI transport hands over a response
only once it is complete). The slow operation waits on an `asyncio.Event` the test sets."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
import strawberry
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from app.main import create_app
from schema.execution import Executor
from tests.app.http import forms
from tests.helpers import without_cost
from tests.images import png

JSONL = "application/jsonl"
ORDERS = "query($id: ID!) { bakery(id: $id) { id } }"
MIXED = [
    {"query": ORDERS, "variables": [{"id": "1"}, {"id": "2"}]},
    {"query": "{ bakery(id: "},
    {"query": ORDERS, "variables": {"id": "3"}},
]
EXPECTED_PLACES = {(0, 0), (0, 1), (1, None), (2, None)}


def place(entry: dict) -> tuple[int | None, int | None]:
    return entry.get("requestIndex"), entry.get("variableIndex")


def lines(response: httpx.Response) -> list[dict]:
    assert response.text.endswith("\n")
    return [orjson.loads(line) for line in response.text.splitlines()]


# ---- framing, over the ASGI transport (the whole body at once) ----


async def test_jsonl_entries_carry_their_indexes_and_their_own_errors(client):
    response = await client.post("/graphql", json=MIXED, headers={"Accept": JSONL})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/jsonl; charset=utf-8"
    entries = {place(entry): entry for entry in lines(response)}
    assert set(entries) == EXPECTED_PLACES
    assert entries[(0, 1)]["data"] == {"bakery": {"id": "2"}}
    assert entries[(2, None)]["data"] == {"bakery": {"id": "3"}}
    [error] = entries[(1, None)]["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert "data" not in entries[(1, None)]


async def test_a_plain_batch_streams_with_request_indexes(client):
    batch = [{"query": ORDERS, "variables": {"id": str(i)}} for i in (4, 5)]
    response = await client.post("/graphql", json=batch, headers={"Accept": JSONL})
    entries = sorted(lines(response), key=place)
    assert without_cost(entries) == [
        {"requestIndex": 0, "data": {"bakery": {"id": "4"}}},
        {"requestIndex": 1, "data": {"bakery": {"id": "5"}}},
    ]


async def test_event_stream_sends_one_next_event_per_entry_then_complete(client):
    response = await client.post("/graphql", json=MIXED, headers={"Accept": "text/event-stream"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = [block.split("\n") for block in response.text.split("\n\n") if block]
    assert events[-1] == ["event: complete", "data:"]
    nexts = events[:-1]
    assert all(event[0] == "event: next" for event in nexts)
    assert {place(orjson.loads(event[1].removeprefix("data: "))) for event in nexts} == (
        EXPECTED_PLACES
    )


async def test_multipart_mixed_sends_one_json_part_per_entry(client):
    response = await client.post("/graphql", json=MIXED, headers={"Accept": "multipart/mixed"})
    assert response.status_code == 200
    assert response.headers["content-type"] == 'multipart/mixed; boundary="-"'
    body = response.text
    assert body.startswith("---\r\n") and body.endswith("\r\n-----\r\n")
    parts = body.removeprefix("---").removesuffix("\r\n-----\r\n").split("\r\n---")
    entries = []
    for part in parts:
        head, _, payload = part.partition("\r\n\r\n")
        assert head == "\r\nContent-Type: application/json; charset=utf-8"
        entries.append(orjson.loads(payload))
    assert {place(entry) for entry in entries} == EXPECTED_PLACES


@pytest.mark.parametrize(
    "accept", ["*/*", "application/json", "application/json, application/jsonl;q=0.5", None]
)
async def test_without_a_streamed_type_preferred_the_answer_is_todays_array(client, accept):
    headers = {"Accept": accept} if accept else {}
    response = await client.post("/graphql", json=MIXED, headers=headers)
    assert response.headers["content-type"].startswith("application/json")
    assert [place(entry) for entry in response.json()] == [(0, 0), (0, 1), (1, None), (2, None)]


async def test_a_request_refused_whole_is_a_json_error_with_its_status(app_client):
    async with app_client(max_batch_operations=2) as client:
        response = await client.post("/graphql", json=MIXED, headers={"Accept": JSONL})
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["errors"][0]["extensions"]["code"] == "TOO_MANY_OPERATIONS"


async def test_a_lone_operation_streams_only_when_no_json_type_is_accepted(client):
    lone = {"query": ORDERS, "variables": {"id": "1"}}
    streamed = await client.post("/graphql", json=lone, headers={"Accept": JSONL})
    assert without_cost(lines(streamed)) == [{"data": {"bakery": {"id": "1"}}}]
    # GraphiQL names multipart/mixed after the JSON types on every request: it gets JSON.
    graphiql = await client.post(
        "/graphql",
        json=lone,
        headers={"Accept": "application/graphql-response+json, application/json, multipart/mixed"},
    )
    assert graphiql.headers["content-type"].startswith("application/graphql-response+json")


# ---- arrival order and disconnection, over real HTTP ----


class Gates:
    """`slow` waits for `release`; whether it was cancelled instead is recorded."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    def schema(self) -> strawberry.Schema:
        gates = self

        @strawberry.type
        class Query:
            @strawberry.field
            async def slow(self) -> str:
                gates.started.set()
                try:
                    await gates.release.wait()
                except asyncio.CancelledError:
                    gates.cancelled.set()
                    raise
                return "slow"

            @strawberry.field
            async def fast(self) -> str:
                # Answers only once the slow one is surely under way, so it is the slow one's
                # wait, not scheduling luck, that orders the stream.
                await gates.started.wait()
                return "fast"

        return strawberry.Schema(query=Query)


IN_REQUEST: contextvars.ContextVar[bool] = contextvars.ContextVar("in_request", default=False)


class Finished:
    """ASGI wrapper: every task started while serving a request (the loop's task factory runs in
    the creating task's context, which says whether it is the request's), and those of them
    still running when the app returned."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.done = asyncio.Event()
        self.spawned: list[asyncio.Task] = []
        self.leftover: set[asyncio.Task] = set()

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        previous = loop.get_task_factory()

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **options: Any) -> asyncio.Task:
            task = asyncio.Task(coro, loop=loop, **options)
            if IN_REQUEST.get():
                self.spawned.append(task)
            return task

        loop.set_task_factory(factory)
        try:
            yield
        finally:
            loop.set_task_factory(previous)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        IN_REQUEST.set(True)  # this request's own context (each ASGI call has a copy)
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                self.leftover = {task for task in self.spawned if not task.done()}
                self.done.set()


@contextlib.asynccontextmanager
async def served(app: ASGIApp) -> AsyncIterator[str]:
    """uvicorn in this event loop on a socket already listening (no start-up to wait for)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/graphql"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


@pytest.fixture
async def gated(engine, settings) -> AsyncIterator[tuple[Gates, Finished, str]]:
    app = create_app(settings, engine=engine)
    gates = Gates()
    app.state.executor = Executor(gates.schema(), app.state.settings)
    finished = Finished(app)
    with finished.watching():
        async with app.router.lifespan_context(app), served(finished) as url:
            yield gates, finished, url


GATED_BATCH = [{"query": "{ slow }"}, {"query": "{ fast }"}]


@pytest.mark.parametrize("accept", [JSONL, "text/event-stream", "multipart/mixed"])
async def test_a_slow_first_operation_does_not_hold_back_the_second(gated, accept):
    gates, finished, url = gated
    arrived: list[dict] = []
    async with (
        httpx.AsyncClient(timeout=10) as http,
        http.stream("POST", url, json=GATED_BATCH, headers={"Accept": accept}) as response,
    ):
        assert response.status_code == 200
        async for entry in _entries(response, accept):
            arrived.append(without_cost(entry))
            gates.release.set()  # only once the first entry is in the client's hands
    assert arrived == [
        {"requestIndex": 1, "data": {"fast": "fast"}},
        {"requestIndex": 0, "data": {"slow": "slow"}},
    ]
    await asyncio.wait_for(finished.done.wait(), 10)
    assert finished.leftover == set()


async def test_a_client_that_disconnects_ends_the_stream_and_every_task_of_it(gated):
    gates, finished, url = gated
    async with (
        httpx.AsyncClient(timeout=10) as http,
        http.stream("POST", url, json=GATED_BATCH, headers={"Accept": JSONL}) as response,
    ):
        first = await anext(_entries(response, JSONL))
        assert without_cost(first) == {"requestIndex": 1, "data": {"fast": "fast"}}
        # Leaving the block closed the connection; the slow operation was never released.
    await asyncio.wait_for(gates.cancelled.wait(), 10)
    await asyncio.wait_for(finished.done.wait(), 10)
    assert len(finished.spawned) >= 3  # the writer's producer, the operations, the watcher
    assert finished.leftover == set()
    assert not gates.release.is_set()


async def _entries(response: httpx.Response, accept: str) -> AsyncIterator[dict]:
    """The entries of a streamed answer as they arrive, whatever its framing."""
    if accept == JSONL:
        async for line in response.aiter_lines():
            if line:
                yield orjson.loads(line)
        return
    # SSE: events end with a blank line. multipart/mixed: every part ends with a delimiter.
    separator = "\n\n" if accept == "text/event-stream" else "\r\n---"
    buffer = ""
    async for text in response.aiter_text():
        buffer += text
        *complete, buffer = buffer.split(separator)
        for block in complete:
            entry = _block_entry(block, accept)
            if entry is not None:
                yield entry


def _block_entry(block: str, accept: str) -> dict | None:
    if accept == "text/event-stream":
        if not block.startswith("event: next\n"):
            return None
        return orjson.loads(block.split("\n", 1)[1].removeprefix("data: "))
    _, _, payload = block.partition("\r\n\r\n")  # the opening `---` and `--` hold none
    return orjson.loads(payload) if payload else None


async def test_a_streamed_multipart_batch_reads_its_files_then_removes_them(app_client, tmp_path):
    spool = tmp_path / "spool"
    query = 'mutation($f: Upload!) { uploadOrderPhoto(orderId: "1", file: $f) { size } }'
    small, large = png(b"a"), png(b"b" * 10)
    async with app_client(upload_spool_dir=str(spool), upload_spool_bytes=0) as client:
        response = await client.post(
            "/graphql",
            headers=forms.headers(Accept=JSONL),
            content=forms.body(
                forms.field(
                    "operations", {"query": query, "variables": [{"f": None}, {"f": None}]}
                ),
                forms.field("map", {"a": ["variables.0.f"], "b": ["variables.1.f"]}),
                forms.file("a", small, "a.png", "image/png"),
                forms.file("b", large, "b.png", "image/png"),
            ),
        )
    assert response.headers["content-type"].startswith(JSONL)
    sizes = {e["variableIndex"]: e["data"]["uploadOrderPhoto"]["size"] for e in lines(response)}
    assert sizes == {0: len(small), 1: len(large)}
    assert [p for p in spool.rglob("part-*")] == []
