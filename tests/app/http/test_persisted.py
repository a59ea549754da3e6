"""Persisted documents on `/graphql`: APQ (miss, registration, hit, hash mismatch), `documentId`,
per-entry misses in batches, one store shared through Redis, the executor's cache keyed by id,
and trusted-documents mode with Apollo's and Relay's manifests."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from app.main import create_app
from app.persisted import sha256_id
from app.settings import SettingsError
from schema.execution import Executor
from tests.helpers import without_cost
from tests.redis import REDIS_URL, redis_available

QUERY = "query($id: ID!) { bakery(id: $id) { id name } }"
HASH = hashlib.sha256(QUERY.encode()).hexdigest()
OTHER = "{ products { name } }"


def apq(sha: str = HASH, **fields: object) -> dict:
    return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha}}, **fields}


def code_of(entry: dict) -> str | None:
    return entry.get("errors", [{}])[0].get("extensions", {}).get("code")


async def test_apq_miss_then_registration_then_hit_by_hash_and_by_document_id(client):
    variables = {"id": "1"}
    miss = await client.post("/graphql", json=apq(variables=variables))
    assert miss.status_code == 400
    assert code_of(miss.json()) == "PERSISTED_QUERY_NOT_FOUND"
    assert "data" not in miss.json()

    registered = await client.post("/graphql", json=apq(query=QUERY, variables=variables))
    assert without_cost(registered.json())["data"]["bakery"]["id"] == "1"

    by_hash = await client.post("/graphql", json=apq(variables=variables))
    by_id = await client.post(
        "/graphql", json={"documentId": f"sha256:{HASH}", "variables": {"id": "2"}}
    )
    by_get = await client.get(
        "/graphql", params={"documentId": f"sha256:{HASH}", "variables": '{"id": "3"}'}
    )
    by_get_apq = await client.get(
        "/graphql",
        params={
            "extensions": json.dumps(apq()["extensions"]),
            "variables": '{"id": "4"}',
        },
    )
    ids = [r.json()["data"]["bakery"]["id"] for r in (by_hash, by_id, by_get, by_get_apq)]
    assert ids == ["1", "2", "3", "4"]


@pytest.mark.parametrize(
    "text",
    ["{ products { name ", "{ secret }", "{ " + "a: products { name } " * 2 + "}" + "#"],
    ids=["does not parse", "does not validate", "valid"],
)
async def test_only_a_document_that_validates_is_registered(client, text):
    # As Apollo Server: a store that takes any text with its hash is a free key-value store
    # (and, shared in Redis, one every worker's clients can fill).
    sha = hashlib.sha256(text.encode()).hexdigest()
    await client.post("/graphql", json=apq(sha=sha, query=text))
    again = await client.post("/graphql", json=apq(sha=sha))
    stored = await client.app.state.documents.get_many([f"sha256:{sha}"])
    if text.endswith("#"):
        assert "data" in again.json() and stored == {f"sha256:{sha}": text}
    else:
        assert code_of(again.json()) == "PERSISTED_QUERY_NOT_FOUND" and stored == {}


async def test_a_hash_that_is_not_the_querys_is_refused_and_nothing_is_stored(client):
    wrong = "0" * 64
    refused = await client.post("/graphql", json=apq(sha=wrong, query=QUERY, variables={"id": "1"}))
    assert refused.status_code == 400
    [error] = refused.json()["errors"]
    assert error["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    assert HASH in error["message"]
    after = await client.post("/graphql", json=apq(sha=wrong, variables={"id": "1"}))
    assert code_of(after.json()) == "PERSISTED_QUERY_NOT_FOUND"
    mismatched_id = await client.post(
        "/graphql", json={"documentId": f"sha256:{wrong}", "query": QUERY, "variables": {"id": "1"}}
    )
    assert code_of(mismatched_id.json()) == "PERSISTED_QUERY_HASH_MISMATCH"


async def test_in_a_batch_a_miss_fails_only_its_entry(client):
    other_hash = hashlib.sha256(OTHER.encode()).hexdigest()
    await client.post("/graphql", json=apq(sha=other_hash, query=OTHER))
    batch = [
        apq(variables=[{"id": "1"}, {"id": "2"}]),  # a miss, for each of its variable sets
        apq(sha=other_hash),  # a hit
        {"query": QUERY, "variables": {"id": "5"}},
        {"documentId": "sha256:" + "f" * 64},
    ]
    response = await client.post("/graphql", json=batch)
    assert response.status_code == 200
    body = response.json()
    assert [code_of(entry) for entry in body] == [
        "PERSISTED_QUERY_NOT_FOUND",
        "PERSISTED_QUERY_NOT_FOUND",
        None,
        None,
        "PERSISTED_QUERY_NOT_FOUND",
    ]
    assert body[2]["data"]["products"][0]["name"] == "Sponge base"
    assert body[3]["data"]["bakery"]["id"] == "5"


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        (apq(sha="xyz"), "`extensions.persistedQuery` must be"),
        ({"documentId": 7}, "`documentId` must be a non-empty string"),
        (
            {**apq(), "documentId": "sha256:" + "a" * 64},
            "`documentId` (sha256:aaaa",
        ),
        ({"documentId": "mine", "query": OTHER}, "Only `sha256:<hex>` ids can be registered"),
        # A malformed sha256 id was a PERSISTED_QUERY_NOT_FOUND, telling the client to send the
        # text with it: a registration that could only fail.
        ({"documentId": "sha256:zz"}, "`documentId` 'sha256:zz' is not a SHA-256 document id"),
        ({"documentId": "sha256:"}, "`documentId` 'sha256:' is not a SHA-256 document id"),
        ({"documentId": "sha256:" + "A" * 64}, "`documentId` 'sha256:AAAA"),
        ({"documentId": "SHA256:" + "a" * 64}, "`documentId` 'SHA256:aaaa"),
        ({"documentId": f"sha256:{'a' * 64}\n"}, "`documentId` 'sha256:aaaa"),
    ],
)
async def test_malformed_persisted_requests_are_400_saying_why(client, request_body, message):
    response = await client.post("/graphql", json=request_body)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["message"].startswith(message)
    assert error["extensions"]["code"] == "BAD_REQUEST"


async def test_a_persisted_document_is_parsed_once_and_cached_under_its_id(client, monkeypatch):
    executor: Executor = client.app.state.executor
    parsed: list[str] = []
    original = executor._prepare

    def counting(query: str):
        parsed.append(query)
        return original(query)

    monkeypatch.setattr(executor, "_prepare", counting)
    await client.post("/graphql", json=apq(query=QUERY, variables={"id": "1"}))
    for i in range(3):
        await client.post("/graphql", json=apq(variables={"id": str(i + 1)}))
    assert parsed == [QUERY]
    assert executor.is_cached(f"sha256:{HASH}")


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    if not redis_available():
        pytest.skip(f"no Redis at {REDIS_URL}")
    prefix = f"batchery-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_workers_sharing_redis_share_their_documents(app_client, redis_prefix):
    shared = {
        "persisted_documents_redis_url": REDIS_URL,
        "persisted_documents_key_prefix": redis_prefix,
    }
    async with app_client(**shared) as first:
        await first.post("/graphql", json=apq(query=QUERY, variables={"id": "1"}))
    async with app_client(**shared) as second:  # another process's memory: empty
        hit = await second.post("/graphql", json=apq(variables={"id": "2"}))
    async with app_client(persisted_documents_key_prefix=redis_prefix) as alone:
        miss = await alone.post("/graphql", json=apq(variables={"id": "2"}))
    assert hit.json()["data"]["bakery"]["id"] == "2"
    assert code_of(miss.json()) == "PERSISTED_QUERY_NOT_FOUND"
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    stored = await client.get(f"{redis_prefix}:persisted:sha256:{HASH}")
    ttl = await client.ttl(f"{redis_prefix}:persisted:sha256:{HASH}")
    await client.aclose()
    assert stored == QUERY.encode()
    assert 0 < ttl <= 7 * 24 * 3600


# ---- trusted documents ----

UNKNOWN = "{ products { stock } }"


def apollo_manifest(path, *documents: str) -> str:
    operations = [
        {"id": hashlib.sha256(d.encode()).hexdigest(), "body": d, "name": None, "type": "query"}
        for d in documents
    ]
    path.write_text(
        json.dumps(
            {"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations}
        )
    )
    return str(path)


@pytest.mark.parametrize("manifest_format", ["apollo", "relay"])
async def test_trusted_mode_runs_the_manifests_documents_and_refuses_the_rest(
    app_client, tmp_path, manifest_format
):
    if manifest_format == "apollo":
        manifest = apollo_manifest(tmp_path / "apollo.json", QUERY)
        own_id = f"sha256:{HASH}"
    else:
        own_id = "5f3c0f9b0ad1a2f6d3c6ec2f8f71a0b4"  # Relay's default: an MD5-looking id
        (tmp_path / "relay.json").write_text(json.dumps({own_id: QUERY}))
        manifest = str(tmp_path / "relay.json")
    unknown_hash = hashlib.sha256(UNKNOWN.encode()).hexdigest()
    async with app_client(trusted_documents_manifest=manifest) as client:
        batch = [
            {"documentId": own_id, "variables": {"id": "1"}},
            apq(variables={"id": "2"}),
            {"query": QUERY, "variables": {"id": "3"}},
            {"query": UNKNOWN},
            apq(sha=unknown_hash, query=UNKNOWN),
            {"documentId": f"sha256:{unknown_hash}"},
        ]
        response = await client.post("/graphql", json=batch)
        again = await client.post("/graphql", json=apq(sha=unknown_hash))
    body = response.json()
    assert [e["data"]["bakery"]["id"] for e in body[:3]] == ["1", "2", "3"]
    assert [code_of(entry) for entry in body[3:]] == ["DOCUMENT_NOT_TRUSTED"] * 3
    assert "BATCHERY_TRUSTED_DOCUMENTS_MANIFEST" in body[3]["errors"][0]["message"]
    assert code_of(again.json()) == "DOCUMENT_NOT_TRUSTED"  # the try above registered nothing


def test_a_manifest_whose_ids_are_not_its_documents_hashes_stops_the_start(tmp_path, settings):
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            {
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [{"id": "0" * 64, "body": QUERY, "name": "Q", "type": "query"}],
            }
        )
    )
    with pytest.raises(SettingsError, match=r"BATCHERY_TRUSTED_DOCUMENTS_MANIFEST.*SHA-256"):
        create_app(settings.replace(trusted_documents_manifest=str(path)))


PROGRESS = 'subscription { bulkJobProgress(id: "0") { processed final } }'


async def test_a_persisted_subscription_over_sse_is_resolved_before_it_starts(app_client):
    stream = {"Accept": "text/event-stream"}
    async with app_client(max_operation_cost=1) as client:
        await client.app.state.documents.put(sha256_id(PROGRESS), PROGRESS)
        known = await client.post(
            "/graphql", json={"documentId": sha256_id(PROGRESS)}, headers=stream
        )
        unknown = await client.post(
            "/graphql", json={"documentId": "sha256:" + "e" * 64}, headers=stream
        )
    # The stored text was costed (and refused for it), so it was found and used.
    assert known.status_code == 400
    assert known.json()["errors"][0]["extensions"]["setting"] == "BATCHERY_MAX_OPERATION_COST"
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["message"].startswith("PersistedQueryNotFound")
    # The code travels too (it said BAD_REQUEST): an APQ client retries on this code.
    assert code_of(unknown.json()) == "PERSISTED_QUERY_NOT_FOUND"


async def test_trusted_mode_refuses_an_unknown_subscription_over_sse_with_its_code(
    app_client, tmp_path
):
    manifest = apollo_manifest(tmp_path / "apollo.json", QUERY)
    async with app_client(trusted_documents_manifest=manifest) as client:
        response = await client.post(
            "/graphql", json={"query": PROGRESS}, headers={"Accept": "text/event-stream"}
        )
    assert response.status_code == 400
    assert code_of(response.json()) == "DOCUMENT_NOT_TRUSTED"
