"""Subscriptions over a real socket: WebSocket (graphql-transport-ws) and SSE on /graphql, on a
small schema of their own (tests/live/ticker.py), with the key rules every request obeys."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from app.db import keys
from app.db.engine import create_engine
from schema.execution import Executor
from tests.live import ticker
from tests.live.server import LiveServer

PROTOCOL = "graphql-transport-ws"
TICKS = "subscription T($n: Int!) { ticks(upTo: $n) }"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path_factory.mktemp("subs"),
        auth="required",
        subscription_max_per_connection=2,
        max_query_tokens=100,
    )
    app = live.server.config.app
    app.state.executor = Executor(ticker.ticker_schema, live.settings)
    with live:
        yield live


@pytest.fixture(scope="module")
def keys_of(server: LiveServer) -> dict[str, str]:
    import asyncio

    # Answered once the server has started (and made its tables).
    assert httpx.get(server.url + "/healthz").status_code == 200

    async def make() -> dict[str, str]:
        engine = create_engine(server.settings.resolved_database_url)
        try:
            read = await keys.create_key(engine, "reader", ["read"])
            bulk = await keys.create_key(engine, "bulk", ["read", "bulk"])
        finally:
            await engine.dispose()
        return {"read": read.key, "bulk": bulk.key}

    return asyncio.run(make())


def ws_url(server: LiveServer) -> str:
    return server.url.replace("http://", "ws://") + "/graphql"


@contextmanager
def open_socket(
    server: LiveServer, payload: dict | None = None, **kwargs
) -> Iterator[ClientConnection]:
    with connect(ws_url(server), subprotocols=[PROTOCOL], open_timeout=10, **kwargs) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
        yield ws


def receive(ws: ClientConnection) -> dict:
    return json.loads(ws.recv(timeout=10))


@contextmanager
def acknowledged(server: LiveServer, key: str) -> Iterator[ClientConnection]:
    with open_socket(server, {"Authorization": f"Bearer {key}"}) as ws:
        assert receive(ws) == {"type": "connection_ack"}
        yield ws


def subscribe(ws: ClientConnection, id: str, query: str, variables: dict | None = None) -> None:
    payload = {"query": query, "variables": variables or {}}
    ws.send(json.dumps({"id": id, "type": "subscribe", "payload": payload}))


def test_ticks_arrive_in_order_over_websocket_then_complete(server, keys_of):
    with acknowledged(server, keys_of["read"]) as ws:
        subscribe(ws, "1", TICKS, {"n": 5})
        messages = [receive(ws) for _ in range(6)]
    assert [m["payload"]["data"]["ticks"] for m in messages[:5]] == [1, 2, 3, 4, 5]
    assert messages[5] == {"id": "1", "type": "complete"}


def test_a_key_in_the_handshake_header_is_used(server, keys_of):
    headers = {"Authorization": f"Bearer {keys_of['read']}"}
    with open_socket(server, additional_headers=headers) as ws:
        assert receive(ws) == {"type": "connection_ack"}
        subscribe(ws, "a", TICKS, {"n": 1})
        assert receive(ws)["payload"] == {"data": {"ticks": 1}}


def test_an_unknown_key_closes_the_socket_with_4403(server):
    with (
        open_socket(server, {"Authorization": "Bearer nope"}) as ws,
        pytest.raises(ConnectionClosed) as closed,
    ):
        receive(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403
    assert "bearer token" in closed.value.rcvd.reason


def test_no_key_in_required_mode_closes_the_socket_with_4401(server):
    with open_socket(server) as ws, pytest.raises(ConnectionClosed) as closed:
        receive(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
    assert "BATCHERY_AUTH=required" in closed.value.rcvd.reason


def test_a_subscription_needing_a_scope_the_key_lacks_is_refused_naming_it(server, keys_of):
    with acknowledged(server, keys_of["read"]) as ws:
        subscribe(ws, "s", "subscription { secret }")
        message = receive(ws)
    assert message["type"] == "error"
    assert message["payload"][0]["extensions"]["code"] == "FORBIDDEN"
    assert message["payload"][0]["extensions"]["missingScopes"] == ["bulk"]
    with acknowledged(server, keys_of["bulk"]) as ws:
        subscribe(ws, "s", "subscription { secret }")
        assert receive(ws)["payload"] == {"data": {"secret": 42}}


def test_validation_and_document_limits_hold_for_subscriptions(server, keys_of):
    many_variables = ", ".join(f"$v{i}: Int" for i in range(30))
    with acknowledged(server, keys_of["read"]) as ws:
        subscribe(ws, "q", "{ hello }")
        query = receive(ws)
        subscribe(ws, "v", "subscription { nope }")
        invalid = receive(ws)
        subscribe(ws, "t", f"subscription T({many_variables}) {{ ticks(upTo: 1) }}")
        too_long = receive(ws)
    assert query["type"] == "error"
    assert "send one `subscription` operation" in query["payload"][0]["message"]
    assert invalid["type"] == "error"
    assert "nope" in invalid["payload"][0]["message"]
    assert too_long["type"] == "error"
    assert "BATCHERY_MAX_QUERY_TOKENS" in too_long["payload"][0]["message"]


def test_subscriptions_per_connection_are_bounded_naming_the_setting(server, keys_of):
    with acknowledged(server, keys_of["read"]) as ws:
        subscribe(ws, "1", "subscription { forever }")
        subscribe(ws, "2", "subscription { forever }")
        subscribe(ws, "3", "subscription { forever }")
        messages = [receive(ws) for _ in range(3)]
    refusals = [m for m in messages if m["type"] == "error"]
    assert [m["id"] for m in refusals] == ["3"]
    extensions = refusals[0]["payload"][0]["extensions"]
    assert extensions["setting"] == "BATCHERY_SUBSCRIPTION_MAX_PER_CONNECTION"


def test_closing_the_socket_ends_the_subscription(server, keys_of):
    ticker.closed.clear()
    with acknowledged(server, keys_of["read"]) as ws:
        subscribe(ws, "f", "subscription { forever }")
        assert receive(ws)["payload"] == {"data": {"forever": 0}}
    assert ticker.closed.wait(10), "the resolver's generator was not closed"


# ---- SSE (distinct connections mode) ----


def sse_events(response: httpx.Response) -> Iterator[tuple[str, str]]:
    event, data = "message", []
    for line in response.iter_lines():
        if line == "":
            if data or event != "message":
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def test_ticks_arrive_in_order_over_sse_then_complete(server, keys_of):
    headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {keys_of['read']}"}
    body = {"query": TICKS, "variables": {"n": 4}}
    with httpx.stream("POST", f"{server.url}/graphql", json=body, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(sse_events(response))
    assert [e for e, _ in events] == ["next"] * 4 + ["complete"]
    assert [json.loads(d)["data"]["ticks"] for _, d in events[:4]] == [1, 2, 3, 4]


def test_sse_over_get_with_query_parameters(server, keys_of):
    headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {keys_of['read']}"}
    params = {"query": TICKS, "variables": json.dumps({"n": 2})}
    with httpx.stream("GET", f"{server.url}/graphql", params=params, headers=headers) as response:
        events = list(sse_events(response))
    assert [e for e, _ in events] == ["next", "next", "complete"]


def test_a_refused_sse_subscription_is_a_plain_json_error_with_its_status(server, keys_of):
    headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {keys_of['read']}"}
    response = httpx.post(
        f"{server.url}/graphql", json={"query": "subscription { secret }"}, headers=headers
    )
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    anonymous = httpx.post(
        f"{server.url}/graphql", json={"query": TICKS}, headers={"Accept": "text/event-stream"}
    )
    assert anonymous.status_code == 401


def test_closing_the_sse_connection_ends_the_subscription(server, keys_of):
    ticker.closed.clear()
    headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {keys_of['read']}"}
    body = {"query": "subscription { forever }"}
    with httpx.stream("POST", f"{server.url}/graphql", json=body, headers=headers) as response:
        first = next(sse_events(response))
        assert first[0] == "next"
    assert ticker.closed.wait(10), "the resolver's generator was not closed"


def test_ticker_module_is_test_data(tmp_path: Path) -> None:
    # Guard: the live schema used above is not the application's.
    from schema import schema

    assert "ticks" not in str(schema)


# ---- GraphiQL's fetcher (app/http/graphiql_fetcher.js), run by node against the server ----

NODE_HARNESS = """
const window = { location: { pathname: process.argv[2] } };
const GraphiQL = { createFetcher: () => async () => ({ over: "http" }) };
%s
(async () => {
  const headers = { Authorization: "Bearer " + process.argv[3] };
  const seen = [];
  for await (const result of fetcher(
      { query: "# subscription {\\n subscription T($n: Int!) { ticks(upTo: $n) }",
        variables: { n: 3 }, operationName: "T" }, { headers })) {
    seen.push(result);
  }
  const query = await fetcher({ query: "{ hello }" }, { headers });
  let refused;
  for await (const result of fetcher({ query: "subscription { secret }" }, { headers })) {
    refused = result;
  }
  console.log(JSON.stringify({ seen, query, refused }));
})();
"""


def test_graphiqls_fetcher_streams_subscriptions_over_sse_and_sends_the_rest_over_http(
    server, keys_of, tmp_path
):
    import shutil
    import subprocess

    from app.http.graphiql import FETCHER
    from tests.live.required import unavailable

    node = shutil.which("node")
    if node is None:
        unavailable("node is not installed")
    script = tmp_path / "fetcher.mjs"
    script.write_text(NODE_HARNESS % FETCHER)
    completed = subprocess.run(
        [node, str(script), f"{server.url}/graphql", keys_of["read"]],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    outcome = json.loads(completed.stdout)
    assert outcome["seen"] == [{"data": {"ticks": n}} for n in (1, 2, 3)]
    assert outcome["query"] == {"over": "http"}
    assert outcome["refused"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_a_subscription_ends_at_its_lifetime_with_an_error_naming_the_setting(tmp_path):
    live = LiveServer(tmp_path, subscription_max_seconds=0.5)
    live.server.config.app.state.executor = Executor(ticker.ticker_schema, live.settings)
    with live:
        body = {"query": "subscription { forever }"}
        headers = {"Accept": "text/event-stream"}
        with httpx.stream(
            "POST", f"{live.url}/graphql", json=body, headers=headers, timeout=30
        ) as response:
            events = list(sse_events(response))
    assert [event for event, _ in events] == ["next", "next", "complete"]
    assert json.loads(events[0][1]) == {"data": {"forever": 0}}
    error = json.loads(events[1][1])["errors"][0]
    assert error["extensions"]["code"] == "SUBSCRIPTION_TIMEOUT"
    assert error["extensions"]["setting"] == "BATCHERY_SUBSCRIPTION_MAX_SECONDS"


def test_a_socket_is_charged_to_its_key_not_to_its_address(tmp_path):
    # The real schema: bulkJobProgress costs 10 (a database round trip), the budget 15.
    with LiveServer(tmp_path, rate_limit_enabled=True, rate_limit="15/minute") as live:
        assert httpx.get(live.url + "/healthz").status_code == 200

        async def make() -> list[str]:
            engine = create_engine(live.settings.resolved_database_url)
            try:
                return [(await keys.create_key(engine, n, ["read", "bulk"])).key for n in "ab"]
            finally:
                await engine.dispose()

        first, second = asyncio.run(make())
        progress = 'subscription { bulkJobProgress(id: "0") { final } }'

        def outcome(key: str, id: str) -> str:
            with acknowledged(live, key) as ws:
                subscribe(ws, id, progress)
                message = receive(ws)
            errors = (
                message["payload"] if message["type"] == "error" else message["payload"]["errors"]
            )
            return errors[0]["extensions"]["code"]

        assert outcome(first, "1") == "NOT_FOUND"  # charged 10, ran: no such job
        assert outcome(first, "2") == "THROTTLED"  # 5 left
        assert outcome(second, "3") == "NOT_FOUND"  # same address, another key: its own budget
