"""What a request may ask the server to prepare before it is prepared: the bytes of document text
not already cached (`BATCHERY_MAX_NEW_DOCUMENT_BYTES_PER_REQUEST`), and, with rate limiting on,
nothing new parsed for a client whose budget is spent (429 before any parse)."""

from __future__ import annotations

import pytest

from schema.execution import Executor

SETTING = "BATCHERY_MAX_NEW_DOCUMENT_BYTES_PER_REQUEST"


def document(n: int) -> str:
    """A distinct valid query, about 60 bytes."""
    return f'{{ bakery(id: "{n}") {{ name }} }} # {n:08d}'


@pytest.fixture
def parsed(monkeypatch):
    """The texts the app's executor parses, once `watch(client)` is called."""
    texts: list[str] = []

    def watch(client) -> list[str]:
        executor: Executor = client.app.state.executor
        original = executor._prepare

        def counting(query: str):
            texts.append(query)
            return original(query)

        monkeypatch.setattr(executor, "_prepare", counting)
        return texts

    return watch


async def test_new_document_text_over_the_cap_is_413_and_nothing_is_parsed(app_client, parsed):
    batch = [{"query": document(n)} for n in range(20)]
    size = sum(len(entry["query"].encode()) for entry in batch)
    async with app_client(max_new_document_bytes_per_request=size - 1) as client:
        texts = parsed(client)
        refused = await client.post("/graphql", json=batch)
        assert refused.status_code == 413
        error = refused.json()["errors"][0]
        assert error["extensions"]["code"] == "DOCUMENTS_TOO_LARGE"
        assert error["extensions"]["setting"] == SETTING
        assert error["extensions"]["limit"] == size - 1
        assert SETTING in error["message"]
        assert texts == []
        # One document fewer fits: it runs.
        assert (await client.post("/graphql", json=batch[1:])).status_code == 200


async def test_cached_documents_and_repeats_count_nothing(app_client, parsed):
    one = document(1)
    async with app_client(max_new_document_bytes_per_request=len(one) * 2) as client:
        texts = parsed(client)
        # The same text 30 times is parsed once, and counted once.
        repeated = await client.post("/graphql", json=[{"query": one}] * 30)
        assert repeated.status_code == 200
        cached = await client.post(
            "/graphql", json=[{"query": one}] * 30 + [{"query": document(2)}]
        )
        assert cached.status_code == 200
    assert texts == [one, document(2)]


async def test_a_client_with_no_budget_left_is_refused_before_anything_is_parsed(
    app_client, parsed
):
    cached = document(1)
    async with app_client(rate_limit_enabled=True, rate_limit="11/minute") as client:
        texts = parsed(client)
        assert (await client.post("/graphql", json={"query": cached})).status_code == 200
        refused = await client.post("/graphql", json=[{"query": document(n)} for n in range(50)])
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["x-ratelimit-remaining"] == "0"
        error = refused.json()["errors"][0]
        assert error["extensions"]["code"] == "THROTTLED"
        assert error["extensions"]["remaining"] == 0
        assert "BATCHERY_RATE_LIMIT" in error["message"]
    assert texts == [cached]
