"""Runtime guards at the transport: the request deadline and a client that disconnects.

The slow operation is held at a gate this test controls: a reader whose `newest_orders` waits for
an event before it reads (the database stays real; nothing is faked but the wait).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson
from prometheus_client import generate_latest
from sqlalchemy import Row

from app.db.reads import Reader
from tests.app.http.test_metrics import sample
from tests.helpers import graphql_scope

GATED = "{ bakeries { name orders(limitTo: 5) { id } } }"
QUICK = '{ bakery(id: "1") { name } }'
WAIT_LIMIT_SECONDS = 30  # a test that hangs fails instead (generous: a loaded 2-core machine)


class GatedReader(Reader):
    def __init__(self, reader: Reader) -> None:
        super().__init__(reader.engine)
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        self.cancelled = False
        self.passed = 0

    async def newest_orders(
        self, bakery_ids: Sequence[int], limit: int
    ) -> Sequence[Row[tuple[object, ...]]]:
        self.entered.set()
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        self.passed += 1
        return await super().newest_orders(bakery_ids, limit)


def gate(app: Any) -> GatedReader:
    reader = GatedReader(app.state.reader)
    app.state.reader = reader
    return reader


def metric(app: Any, name: str, **labels: str) -> float:
    return sample(generate_latest(app.state.metrics.registry).decode(), name, **labels)


STATEMENTS = "batchery_db_statements_total"
STOPPED = "batchery_graphql_operations_stopped_total"


async def test_past_the_deadline_an_operation_gets_timeout_and_the_others_their_answers(
    app_client,
):
    async with app_client(execution_timeout_seconds=0.5) as client:
        reader = gate(client.app)  # type: ignore[attr-defined]
        response = await client.post("/graphql", json=[{"query": GATED}, {"query": QUICK}])
        slow, quick = response.json()
        assert response.status_code == 200
        assert slow["data"] is None
        [error] = slow["errors"]
        assert error["extensions"]["code"] == "TIMEOUT"
        assert "0.5 s" in error["message"]
        assert "BATCHERY_EXECUTION_TIMEOUT_SECONDS" in error["message"]
        assert "errors" not in quick and quick["data"]["bakery"]["name"]
        assert reader.cancelled and reader.passed == 0
        assert metric(client.app, STOPPED, type="query", reason="timeout") == 1  # type: ignore[attr-defined]

        # The next request is served normally.
        reader.gate.set()
        again = await client.post("/graphql", json={"query": GATED})
        assert again.status_code == 200
        assert "errors" not in again.json() and again.json()["data"]["bakeries"]
        assert reader.passed == 1


async def test_a_client_that_disconnects_cancels_its_operations_and_their_statements(
    app_client,
):
    async with app_client() as client:
        app = client.app  # type: ignore[attr-defined]
        reader = gate(app)
        body = orjson.dumps([{"query": GATED}, {"query": GATED.replace("5", "6")}])
        # The client leaves while the operations wait.
        await asyncio.wait_for(post_then_leave(app, body, reader.entered), WAIT_LIMIT_SECONDS)
        statements = metric(app, STATEMENTS)
        assert reader.cancelled
        assert metric(app, STOPPED, type="query", reason="cancelled") == 2

        # Opening the gate now runs nothing: no operation waits behind it any more.
        reader.gate.set()
        assert (await client.post("/graphql", json={"query": QUICK})).status_code == 200
        assert reader.passed == 0
        assert metric(app, STATEMENTS) == statements + 1  # the quick query's own statement


async def test_a_lone_operation_past_the_deadline_gets_timeout_and_the_request_goes_on(
    app_client,
):
    # One operation runs in the request's own task (BatchRunner._supervise_one), not in one of
    # its own as a batch's do: the deadline must stop it all the same.
    async with app_client(execution_timeout_seconds=0.5) as client:
        reader = gate(client.app)  # type: ignore[attr-defined]
        response = await client.post("/graphql", json={"query": GATED})
        assert response.status_code == 200
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == "TIMEOUT"
        assert response.json()["data"] is None
        assert reader.cancelled and reader.passed == 0
        assert metric(client.app, STOPPED, type="query", reason="timeout") == 1  # type: ignore[attr-defined]
        reader.gate.set()
        again = await client.post("/graphql", json={"query": GATED})
        assert "errors" not in again.json() and again.json()["data"]["bakeries"]
        assert reader.passed == 1


async def test_a_client_that_disconnects_cancels_its_lone_operation(app_client):
    async with app_client() as client:
        app = client.app  # type: ignore[attr-defined]
        reader = gate(app)
        body = orjson.dumps({"query": GATED})
        # The client leaves while the operation waits; the request's task ends normally (the
        # cancellation was ours, and taken back).
        await asyncio.wait_for(post_then_leave(app, body, reader.entered), WAIT_LIMIT_SECONDS)
        assert reader.cancelled
        assert metric(app, STOPPED, type="query", reason="cancelled") == 1
        statements = metric(app, STATEMENTS)
        reader.gate.set()
        assert (await client.post("/graphql", json={"query": QUICK})).status_code == 200
        assert reader.passed == 0
        assert metric(app, STATEMENTS) == statements + 1


async def test_a_large_response_holds_the_collector_off_no_longer_than_the_request(
    client, monkeypatch
):
    import gc

    from schema import guards

    monkeypatch.setattr(guards, "LARGE_RESULT_NODES", 20)  # the small seed's results are "large"
    held: list[bool] = []
    disable = gc.disable
    monkeypatch.setattr(gc, "disable", lambda: (held.append(True), disable())[1])
    assert gc.isenabled()
    response = await client.post("/graphql", json={"query": GATED})
    assert response.status_code == 200 and len(response.json()["data"]["bakeries"]) == 6
    assert held == [True]
    assert gc.isenabled() and guards._COLLECTIONS.holders == 0


async def post_then_leave(app: Any, body: bytes, leave: asyncio.Event) -> list[dict[str, Any]]:
    """POST `body` to /graphql straight through ASGI, the client disconnecting once `leave` is
    set; returns what the app sent."""
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await leave.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(graphql_scope("application/json"), receive, send)
    return sent
