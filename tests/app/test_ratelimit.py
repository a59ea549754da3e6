"""The rate limiter on its own: budgets, charges, refusals, refunds, on memory and on Redis."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from app.ratelimit import Budget, Charge, RateLimiter, RateLimitStatus, check_storage_url
from app.settings import SettingsError
from tests.redis import REDIS_URL, redis_available

STORAGES = [
    "memory",
    pytest.param(
        "redis",
        marks=pytest.mark.skipif(not redis_available(), reason=f"no Redis at {REDIS_URL}"),
    ),
]


@pytest_asyncio.fixture(params=STORAGES)
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    url = REDIS_URL if request.param == "redis" else ""
    # A prefix per test: tests sharing the Redis server never see each other's counters.
    made = RateLimiter(Budget.parse("10/minute"), url, f"test-{uuid.uuid4().hex}")
    await made.start()
    yield made
    await made.clear("client")
    await made.close()


@pytest.mark.parametrize(
    ("text", "points", "seconds"),
    [("10/minute", 10, 60), ("500 per 10 seconds", 500, 10), ("3/hour", 3, 3600)],
)
def test_a_budget_is_read_in_the_limits_notation(text, points, seconds):
    budget = Budget.parse(text)
    assert (budget.points, budget.window_seconds) == (points, seconds)
    assert budget.restore_rate == points / seconds


@pytest.mark.parametrize("text", ["", "lots", "10/fortnight", "0/minute", "1/second;5/minute"])
def test_a_budget_that_cannot_be_used_names_its_variable(text):
    with pytest.raises(SettingsError, match="BATCHERY_RATE_LIMIT must be one budget"):
        Budget.parse(text)


@pytest.mark.parametrize("url", ["memcached://x", "http://127.0.0.1:6379", "redis://"])
def test_a_storage_that_is_not_redis_names_its_variable(url):
    with pytest.raises(SettingsError, match="BATCHERY_RATE_LIMIT_STORAGE must be empty"):
        check_storage_url(url)


def test_memory_is_the_empty_storage():
    assert check_storage_url("") == check_storage_url("memory://") == ""
    assert check_storage_url(REDIS_URL) == REDIS_URL


async def test_charges_within_the_budget_pass_and_count(limiter):
    first = await limiter.charge("client", 4)
    second = await limiter.charge("client", 6)
    assert first.allowed and second.allowed
    assert _numbers(first.status) == (10, 6, 4)
    assert _numbers(second.status) == (10, 0, 10)


async def test_a_refused_charge_spends_nothing(limiter):
    await limiter.charge("client", 7)
    refused = await limiter.charge("client", 4)
    assert not refused.allowed
    assert _numbers(refused.status) == (10, 3, 7)
    # What was left is still there for a request that fits.
    fits = await limiter.charge("client", 3)
    assert fits.allowed and _numbers(fits.status) == (10, 0, 10)
    assert not (await limiter.charge("client", 1)).allowed


async def test_a_charge_larger_than_the_budget_is_refused_even_when_unused(limiter):
    refused = await limiter.charge("client", 11)
    assert not refused.allowed
    assert _numbers(refused.status) == (10, 10, 0)


async def test_clients_have_budgets_of_their_own(limiter):
    await limiter.charge("client", 10)
    other = await limiter.charge("other", 10)
    assert other.allowed
    await limiter.clear("other")


async def test_clearing_a_client_gives_its_whole_budget_back(limiter):
    await limiter.charge("client", 10)
    assert not (await limiter.charge("client", 1)).allowed
    await limiter.clear("client")
    status = await limiter.status("client")
    assert status is not None and _numbers(status) == (10, 10, 0)
    assert (await limiter.charge("client", 10)).allowed


async def test_the_window_resets_at_its_end(limiter):
    before = time.time()
    charged = await limiter.charge("client", 1)
    after = time.time()
    assert charged.status is not None
    # The window opened with this charge and lasts the budget's minute (Redis counts whole
    # seconds, so the end may be reported up to a second early).
    assert before + 59 <= charged.status.reset_at <= after + 60
    assert 59 <= charged.status.retry_after() <= 60


async def test_an_unused_budget_reports_a_window_that_would_start_now(limiter):
    status = await limiter.status("nobody-yet")
    assert status is not None and _numbers(status) == (10, 10, 0)
    assert status.reset_at > time.time() + 59


async def test_giving_back_returns_what_a_request_did_not_use(limiter):
    charged = await limiter.charge("client", 8)
    after = await limiter.give_back(charged, 5)
    assert after is not None and _numbers(after) == (10, 7, 3)
    # Never more than was charged.
    again = await limiter.give_back(Charge("client", 3, True, after), 50)
    assert again is not None and _numbers(again) == (10, 10, 0)


async def test_nothing_is_given_back_into_a_window_that_has_ended(limiter):
    charged = await limiter.charge("client", 8)
    assert charged.status is not None
    ended = RateLimitStatus(10, 2, 8, time.time() - 1, 60)
    after = await limiter.give_back(Charge("client", 8, True, ended), 8)
    assert after is not None and _numbers(after) == (10, 2, 8)


async def test_a_storage_that_does_not_answer_lets_requests_through_and_says_so():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    failures: list[None] = []
    limiter = RateLimiter(
        Budget.parse("1/minute"), f"redis://127.0.0.1:{port}", "x", lambda: failures.append(None)
    )
    await limiter.start()
    try:
        first = await limiter.charge("client", 5)
        second = await limiter.charge("client", 5)
    finally:
        await limiter.close()
    assert first.allowed and second.allowed
    assert first.status is None
    assert len(failures) == 2


def _numbers(status: RateLimitStatus | None) -> tuple[int, int, int]:
    assert status is not None
    return status.limit, status.remaining, status.used


# ---- time moved by the test (the memory storage takes a clock) ----


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture
async def timed() -> AsyncIterator[tuple[RateLimiter, Clock]]:
    clock = Clock()
    made = RateLimiter(Budget.parse("10/minute"), clock=clock)
    await made.start()
    yield made, clock
    await made.close()


async def test_the_whole_budget_is_back_when_the_window_ends(timed):
    limiter, clock = timed
    charged = await limiter.charge("client", 10)
    assert charged.status is not None and charged.status.reset_at == clock.now + 60
    clock.now += 59.9
    assert not (await limiter.charge("client", 1)).allowed
    clock.now += 0.1
    again = await limiter.charge("client", 10)
    assert again.allowed and again.status is not None
    assert again.status.reset_at == clock.now + 60  # a new window opened with this charge


async def test_a_refund_after_the_window_ended_gives_nothing_to_the_next(timed):
    limiter, clock = timed
    charged = await limiter.charge("client", 8)
    clock.now += 61
    await limiter.charge("client", 2)
    after = await limiter.give_back(charged, 8)
    assert after is not None and _numbers(after) == (10, 8, 2)
