"""The identity provider's key set: cached for its TTL, refetched on an unknown kid at most once
per interval (whatever the tokens say), one fetch shared by concurrent requests, held keys kept
through a failed refresh. A clock the test moves stands for time; no test sleeps."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from typing import Any

import pytest

from app.http.jwks import MAX_JWKS_BYTES, CachedJwks, KeysUnavailable, UnknownKey, fetch_url
from tests.app.http.idp import Idp, jwk_of, rsa_key, serving


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Source:
    """A JWKS document the test edits, read through a counting function (the thread's work)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.reads = 0
        self.fail: Exception | None = None

    def read(self) -> bytes:
        self.reads += 1
        if self.fail is not None:
            raise self.fail
        return json.dumps(self.document).encode()


@pytest.fixture(scope="module")
def idp() -> Idp:
    return Idp()


def cached(source: Source, clock: Clock, **options: float) -> CachedJwks:
    settings = {"cache_seconds": 300.0, "min_refresh_seconds": 30.0, **options}
    return CachedJwks("the test JWKS", source.read, clock=clock, **settings)


async def refreshed(jwks: CachedJwks) -> None:
    """Wait for the background refresh an expired set started, if any."""
    if jwks.refreshing is not None:
        await jwks.refreshing


async def test_keys_are_fetched_once_per_ttl(idp):
    source, clock = Source(idp.jwks()), Clock()
    jwks = cached(source, clock)
    for _ in range(5):
        assert (await jwks.key("rsa-1", "RS256")).key_id == "rsa-1"
    assert source.reads == 1
    clock.now += 300
    await jwks.key("ec-1", "ES256")
    await refreshed(jwks)
    assert source.reads == 2


async def test_unknown_key_ids_refetch_at_most_once_per_interval_then_find_a_rotated_key(idp):
    source, clock = Source(idp.jwks()), Clock()
    jwks = cached(source, clock)
    await jwks.key("rsa-1", "RS256")
    # A flood of made-up ids right after a fetch: no fetch at all.
    for n in range(50):
        with pytest.raises(UnknownKey, match=f"'bogus-{n}'"):
            await jwks.key(f"bogus-{n}", "RS256")
    assert source.reads == 1
    # The provider rotates; once the interval has passed, one unknown id refetches, once.
    source.document = {"keys": [*idp.jwks()["keys"], jwk_of(rsa_key(), "rsa-2", "RS256")]}
    clock.now += 30
    assert (await jwks.key("rsa-2", "RS256")).key_id == "rsa-2"
    for _ in range(10):
        with pytest.raises(UnknownKey):
            await jwks.key("still-bogus", "RS256")
    assert source.reads == 2


async def test_an_expired_set_answers_from_the_held_keys_while_it_is_refreshed(idp):
    # Every JWT request waited for the refresh when the set expired: with a slow provider, all
    # of them stalled for up to the fetch's timeout (longer for a provider that drips its
    # answer), every BATCHERY_JWT_JWKS_CACHE_SECONDS.
    gate, arrived = threading.Event(), threading.Event()
    source, clock = Source(idp.jwks()), Clock()

    def slow_read() -> bytes:
        arrived.set()
        gate.wait(10)
        return source.read()

    gate.set()
    jwks = CachedJwks(
        "the test JWKS", slow_read, clock=clock, cache_seconds=300.0, min_refresh_seconds=30.0
    )
    await jwks.key("rsa-1", "RS256")
    gate.clear()
    arrived.clear()
    clock.now += 300
    held = await asyncio.wait_for(jwks.key("rsa-1", "RS256"), 5)
    assert held.key_id == "rsa-1"
    assert await asyncio.to_thread(arrived.wait, 10)  # the refresh is under way meanwhile
    gate.set()
    await refreshed(jwks)
    assert source.reads == 2
    await jwks.key("rsa-1", "RS256")
    assert source.reads == 2  # fresh again: no further fetch


async def test_concurrent_first_uses_share_one_fetch(idp):
    source, clock = Source(idp.jwks()), Clock()
    jwks = cached(source, clock)
    found = await asyncio.gather(*(jwks.key("rsa-1", "RS256") for _ in range(20)))
    assert {key.key_id for key in found} == {"rsa-1"}
    assert source.reads == 1


async def test_a_failed_refresh_keeps_the_held_keys_and_retries_after_the_interval(idp):
    source, clock = Source(idp.jwks()), Clock()
    jwks = cached(source, clock)
    await jwks.key("rsa-1", "RS256")
    source.fail = OSError("connection refused")
    clock.now += 300
    assert (await jwks.key("rsa-1", "RS256")).key_id == "rsa-1"  # the held key, after a failure
    await refreshed(jwks)
    assert source.reads == 2
    await jwks.key("rsa-1", "RS256")
    assert source.reads == 2  # not retried before the interval
    source.fail = None
    clock.now += 30
    await jwks.key("rsa-1", "RS256")
    await refreshed(jwks)
    assert source.reads == 3


async def test_with_no_keys_held_a_failure_is_unavailable_and_not_retried_at_once(idp):
    source, clock = Source(idp.jwks()), Clock()
    source.fail = OSError("connection refused")
    jwks = cached(source, clock)
    with pytest.raises(KeysUnavailable, match="connection refused"):
        await jwks.key("rsa-1", "RS256")
    with pytest.raises(KeysUnavailable, match="at most every 30 s"):
        await jwks.key("rsa-1", "RS256")
    assert source.reads == 1
    source.fail = None
    clock.now += 30
    assert (await jwks.key("rsa-1", "RS256")).key_id == "rsa-1"


async def test_only_public_signing_keys_are_kept_and_a_key_serves_only_its_algorithm(idp):
    signing = jwk_of(idp.rsa, "rsa-1", "RS256")
    document = {
        "keys": [
            signing,
            {**jwk_of(idp.rsa, "enc-1", "RS256"), "use": "enc"},
            {"kty": "oct", "kid": "secret-1", "k": "c2VjcmV0"},
        ]
    }
    jwks = cached(Source(document), Clock())
    for kid in ("enc-1", "secret-1"):
        with pytest.raises(UnknownKey, match=f"'{kid}', which is not in"):
            await jwks.key(kid, "HS256" if kid == "secret-1" else "RS256")
    with pytest.raises(UnknownKey, match="'PS256', but its key is for 'RS256'"):
        await jwks.key("rsa-1", "PS256")
    without_alg = {key: value for key, value in signing.items() if key != "alg"}
    bare = cached(Source({"keys": [without_alg]}), Clock())
    assert (await bare.key(None, "PS256")).algorithm_name == "PS256"  # one key: no kid needed
    with pytest.raises(UnknownKey, match="cannot verify"):
        await bare.key(None, "ES256")


@pytest.mark.parametrize(
    ("document", "named"),
    [
        (b"not json", "is not JSON"),
        (b'{"keys": "x"}', "is not a JWKS"),
        (b'{"keys": [{"kty": "oct", "k": "eA"}]}', "holds no public signing key"),
    ],
)
def test_a_jwks_that_is_not_one_is_refused_naming_why(document, named):
    jwks = CachedJwks("the test JWKS", lambda: document, cache_seconds=1, min_refresh_seconds=1)
    with pytest.raises(KeysUnavailable, match=named):
        jwks.load_now()


def test_a_jwks_url_answer_is_bounded_in_size():
    with serving({"keys": [], "padding": "x" * MAX_JWKS_BYTES}) as server:
        with pytest.raises(KeysUnavailable, match="larger than"):
            fetch_url(server.url, 5)
        assert server.hits == 1


def test_a_provider_dripping_its_answer_is_abandoned_at_the_total_deadline(idp):
    # One byte every 50 ms passes any per-read timeout: only a deadline on the whole fetch
    # ends it (the document would take tens of seconds to arrive).
    with serving(idp.jwks()) as server:
        server.drip_seconds = 0.05
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            fetching = pool.submit(fetch_url, server.url, 0.5)
            with pytest.raises(KeysUnavailable) as refused:
                fetching.result(timeout=10)
            assert server.abandoned.wait(10)  # the connection was dropped, not left to drip
    assert "BATCHERY_JWT_JWKS_TIMEOUT_SECONDS" in str(refused.value)
    assert "0.5 s" in str(refused.value)
