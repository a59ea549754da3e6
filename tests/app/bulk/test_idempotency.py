"""The idempotency store, in the database: claims, replays, conflicts, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.bulk.idempotency import (
    IdempotencyStore,
    InvalidKey,
    KeyInProgress,
    KeyReused,
    Stored,
    fingerprint,
    keys,
)
from app.db.transactions import DEFAULT_WRITE_TIMEOUT_SECONDS, set_write_timeout, write_queue


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(engine, clock) -> IdempotencyStore:
    return IdempotencyStore(engine, ttl_seconds=3600, lock_seconds=60, clock=clock)


async def rows(engine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(keys))).scalar_one())


def test_fingerprint_ignores_key_order_and_sees_values():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
    assert len(fingerprint(None)) == 64


async def test_first_claim_holds_the_key_and_a_completed_one_replays(store):
    assert await store.claim("k", "s", "fp") is None
    with pytest.raises(KeyInProgress):
        await store.claim("k", "s", "fp")
    await store.complete("k", "s", 207, '{"done": true}')
    assert await store.claim("k", "s", "fp") == Stored(207, '{"done": true}')


async def test_another_request_under_the_same_key_is_refused(store):
    assert await store.claim("k", "s", "fp") is None
    await store.complete("k", "s", 200, "{}")
    with pytest.raises(KeyReused):
        await store.claim("k", "s", "other")
    # Scopes are separate key spaces.
    assert await store.claim("k", "other scope", "other") is None


async def test_release_forgets_the_key(store, engine):
    assert await store.claim("k", "s", "fp") is None
    await store.release("k", "s")
    assert await rows(engine) == 0
    assert await store.claim("k", "s", "other") is None


async def test_expired_keys_are_forgotten_and_purged(store, engine, clock):
    assert await store.claim("old", "s", "fp") is None
    await store.complete("old", "s", 200, "{}")
    clock.advance(3601)
    # Another client's claim purges the expired row; the old key is free again.
    assert await store.claim("new", "s", "fp") is None
    assert await rows(engine) == 1
    assert await store.claim("old", "s", "changed") is None


async def test_a_key_abandoned_while_running_can_be_taken_over(store, clock):
    assert await store.claim("k", "s", "fp") is None
    clock.advance(30)
    with pytest.raises(KeyInProgress):
        await store.claim("k", "s", "fp")
    clock.advance(31)
    assert await store.claim("k", "s", "fp") is None


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "é"])
async def test_unusable_keys_are_refused(store, key):
    with pytest.raises(InvalidKey):
        await store.claim(key, "s", "fp")


async def test_a_busy_database_after_the_work_leaves_the_key_running_instead_of_failing(
    store, engine, clock
):
    # The work is done by then: its caller must get its answer, not a "nothing was written".
    queue = write_queue(engine)
    if queue is None:
        pytest.skip("the write queue is SQLite's")
    assert await store.claim("k", "rest", "f1") is None
    set_write_timeout(engine, 0.05)
    try:
        async with queue.turn():  # another write holds the database past the deadline
            await store.complete("k", "rest", 201, "{}")
            await store.release("k", "rest")
    finally:
        set_write_timeout(engine, DEFAULT_WRITE_TIMEOUT_SECONDS)
    with pytest.raises(KeyInProgress):
        await store.claim("k", "rest", "f1")
    clock.advance(61)  # lock_seconds: a retry takes the key over
    assert await store.claim("k", "rest", "f1") is None
