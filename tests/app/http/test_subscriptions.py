"""Subscriptions over WebSocket resolve their documents as HTTP requests do: APQ and `documentId`
from the store, and trusted-documents mode refusing anything outside the manifest, each refusal
an `error` for that subscription alone (the socket goes on serving the others)."""

from __future__ import annotations

from app.persisted import sha256_id
from tests.app.http.sockets import graphql_socket
from tests.app.http.test_persisted import apollo_manifest

PROGRESS = 'subscription { bulkJobProgress(id: "0") { processed final } }'
OTHER = 'subscription { bulkJobProgress(id: "1") { processed } }'


def error_code(message: dict) -> str:
    assert message["type"] == "error", message
    return str(message["payload"][0]["extensions"]["code"])


async def until_done(socket) -> list[dict]:
    """The messages of the one subscription running, to its `complete` or `error`."""
    messages = [await socket.receive()]
    while messages[-1]["type"] not in ("complete", "error"):
        messages.append(await socket.receive())
    return messages


async def still_open(socket) -> None:
    await socket.send({"type": "ping"})
    assert await socket.receive() == {"type": "pong"}


async def test_trusted_mode_refuses_an_unknown_subscription_and_keeps_the_socket(
    app_client, tmp_path
):
    manifest = apollo_manifest(tmp_path / "apollo.json", PROGRESS)
    # A cost limit of 1 refuses every subscription once its text is known: a refusal for cost
    # proves the document was found and trusted, with nothing run.
    async with (
        app_client(trusted_documents_manifest=manifest, max_operation_cost=1) as client,
        graphql_socket(client.app) as socket,
    ):
        await socket.send({"id": "a", "type": "subscribe", "payload": {"query": OTHER}})
        refused = await socket.receive()
        assert refused["id"] == "a"
        assert error_code(refused) == "DOCUMENT_NOT_TRUSTED"
        assert "BATCHERY_TRUSTED_DOCUMENTS_MANIFEST" in refused["payload"][0]["message"]
        await still_open(socket)
        unknown = {"documentId": sha256_id(OTHER)}
        await socket.send({"id": "b", "type": "subscribe", "payload": unknown})
        assert error_code(await socket.receive()) == "DOCUMENT_NOT_TRUSTED"
        for subscription_id, payload in (
            ("c", {"documentId": sha256_id(PROGRESS)}),
            ("d", {"query": PROGRESS}),
            ("e", apq(PROGRESS)),
        ):
            await socket.send({"id": subscription_id, "type": "subscribe", "payload": payload})
            answer = await socket.receive()
            assert answer["id"] == subscription_id
            assert error_code(answer) == "COST_LIMIT_EXCEEDED"


def apq(text: str, **fields: object) -> dict:
    sha = sha256_id(text).removeprefix("sha256:")
    return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha}}, **fields}


async def test_apq_over_websocket_misses_registers_and_hits(client):
    async with graphql_socket(client.app) as socket:
        await socket.send({"id": "a", "type": "subscribe", "payload": apq(PROGRESS)})
        assert error_code(await socket.receive()) == "PERSISTED_QUERY_NOT_FOUND"
        await still_open(socket)
        registration = apq(PROGRESS, query=PROGRESS)
        await socket.send({"id": "b", "type": "subscribe", "payload": registration})
        registered = await until_done(socket)
        stored = await client.app.state.documents.get_many({sha256_id(PROGRESS)})
        assert stored == {sha256_id(PROGRESS): PROGRESS}
        await socket.send({"id": "c", "type": "subscribe", "payload": apq(PROGRESS)})
        by_hash = await until_done(socket)
    # The stored text ran as the sent one did (here: no such job), under its own id.
    assert {m.pop("id") for m in registered} == {"b"}
    assert {m.pop("id") for m in by_hash} == {"c"}
    assert registered == by_hash
    assert registered[0]["type"] == "next"


async def test_wrong_keys_in_connection_init_count_as_guesses_of_the_address(app_client):
    settings = {
        "auth": "required",
        "rate_limit_enabled": True,
        "rate_limit": "1000/minute",
        "rate_limit_auth_failures": 2,
    }
    async with app_client(**settings) as client:
        closes = []
        for n in range(3):
            wrong = {"Authorization": f"Bearer bk_guess{n}"}
            async with graphql_socket(client.app, wrong, acknowledged=False) as socket:
                closes.append(await socket.receive())
        over_http = await client.get("/api/bakeries/1", headers={"Authorization": "Bearer bk_x"})
    assert [close["code"] for close in closes] == [4403, 4403, 4429]
    assert "BATCHERY_RATE_LIMIT_AUTH_FAILURES" in closes[2]["reason"]
    assert over_http.status_code == 429  # one count per address, whatever the transport


async def test_a_subscription_is_admitted_as_an_http_request_before_it_is_parsed(app_client):
    spend = {"query": '{ bakery(id: "1") { name } }'}  # costs 11: the whole budget
    async with app_client(
        rate_limit_enabled=True, rate_limit="11/minute", max_new_document_bytes_per_request=80
    ) as client:
        executor = client.app.state.executor
        async with graphql_socket(client.app) as socket:
            big = {"query": PROGRESS + " " * 80}
            await socket.send({"id": "a", "type": "subscribe", "payload": big})
            too_large = await socket.receive()
            assert (await client.post("/graphql", json=spend)).status_code == 200
            await socket.send({"id": "b", "type": "subscribe", "payload": {"query": PROGRESS}})
            spent = await socket.receive()
            await still_open(socket)
        assert not executor.is_cached(PROGRESS)  # neither was parsed
    assert error_code(too_large) == "DOCUMENTS_TOO_LARGE"
    assert too_large["payload"][0]["extensions"]["setting"] == (
        "BATCHERY_MAX_NEW_DOCUMENT_BYTES_PER_REQUEST"
    )
    assert error_code(spent) == "THROTTLED"
