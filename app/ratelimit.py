"""Rate limiting by cost: each client has a budget of points per window, and every request spends
the points its work costs (a GraphQL request the sum of its operations' cost, a REST call one
point per record). Built on the `limits` library.

- **Fixed window** (`limits`' FixedWindowRateLimiter): the first charge opens a window of the
  budget's length; at its end the whole budget is back. One counter per client, so it is cheap in
  memory and in Redis, and "used", "remaining" and "resets at" are exact numbers a client can plan
  with (GitHub's model). A moving window would store one entry per point.
- **Refused requests spend nothing**: `limits` counts a refused hit, so a request too large for
  what is left would also take the points that smaller requests could still use. The points are
  given back at once.
- **Refunds** (`give_back`): what a request was charged beyond what it turned out to cost is
  given back, if its window is still the current one (never into the next window).
- **Storage**: in process memory by default (each worker its own budget; app/ratelimit_memory.py
  says why not `limits`' own memory storage), Redis when
  `BATCHERY_RATE_LIMIT_STORAGE` points at one (every worker shares one budget). A storage that
  fails does not take requests down with it: they are served unlimited and the failure is logged
  and counted (`on_storage_error`).

Nothing here knows HTTP or GraphQL: the transports decide what a request costs and who its client
is (app/http/identity.py, app/http/throttle.py).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError

from app.ratelimit_memory import MemoryCounters
from app.settings import PREFIX, Settings, SettingsError

logger = logging.getLogger("batchery.ratelimit")

BUDGET_SETTING = PREFIX + "RATE_LIMIT"
STORAGE_SETTING = PREFIX + "RATE_LIMIT_STORAGE"
REDIS_SCHEMES = ("redis://", "rediss://")
# A rate-limit check that waits on a slow Redis delays every request: better to give up soon and
# serve the request unlimited (a failure is logged and counted).
REDIS_TIMEOUT_SECONDS = 1.0
# Errors a storage may raise besides StorageError (a pool that cannot connect, a timeout).
STORAGE_FAULTS = (StorageError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class Budget:
    """Points per window, as configured (`BATCHERY_RATE_LIMIT`)."""

    points: int
    window_seconds: int
    text: str

    @classmethod
    def parse(cls, raw: str) -> Budget:
        try:
            items = parse_many(raw)
        except ValueError:
            items = []
        if len(items) != 1 or items[0].amount < 1:
            raise SettingsError(
                f"{BUDGET_SETTING} must be one budget of points per window, like 10000/minute "
                f"or 500 per 10 seconds (the `limits` library's notation), got {raw!r}"
            )
        return cls(items[0].amount, items[0].get_expiry(), raw.strip())

    @property
    def restore_rate(self) -> float:
        """Points per second over a whole window (the window restores them all at its end)."""
        return self.points / self.window_seconds

    def describe(self) -> str:
        return f"{self.points} points per {_duration(self.window_seconds)}"


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    """A client's budget at one moment."""

    limit: int
    remaining: int
    used: int
    reset_at: float  # epoch seconds: when the window ends and the whole budget is back
    window_seconds: int

    def retry_after(self, now: float | None = None) -> int:
        """Whole seconds until the window ends (at least 1)."""
        now = time.time() if now is None else now
        return max(1, math.ceil(self.reset_at - now))


@dataclass(frozen=True, slots=True)
class Charge:
    """The outcome of charging a client: allowed or not, and its budget afterwards (None when the
    storage failed and the request went through unlimited)."""

    key: str
    cost: int
    allowed: bool
    status: RateLimitStatus | None


class RateLimiter:
    """One budget, counted per client key in one storage. `start` inside the event loop."""

    def __init__(
        self,
        budget: Budget,
        storage_url: str = "",
        key_prefix: str = "batchery",
        on_storage_error: Callable[[], None] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.budget = budget
        # Time as the memory storage sees it (tests move it); Redis keeps its own.
        self.clock = clock
        self.storage_url = check_storage_url(storage_url)
        self.key_prefix = key_prefix
        self.on_storage_error = on_storage_error
        self.item: RateLimitItem = parse_many(budget.text)[0]
        self.item.namespace = "cost"
        self._storage: Storage | None = None
        self._strategy: FixedWindowRateLimiter | None = None
        self._pool: Any = None

    @classmethod
    def from_settings(
        cls, settings: Settings, on_storage_error: Callable[[], None] | None = None
    ) -> RateLimiter:
        return cls(
            Budget.parse(settings.rate_limit),
            settings.rate_limit_storage,
            settings.rate_limit_key_prefix,
            on_storage_error,
        )

    @property
    def shared(self) -> bool:
        return bool(self.storage_url)

    async def start(self) -> None:
        """Open the storage (the memory storage needs the running loop); a Redis that does not
        answer is reported here, and requests are served unlimited until it does."""
        if self.storage_url:
            # Our own pool: limits has no way to close the client it would make.
            from redis.asyncio import ConnectionPool

            self._pool = ConnectionPool.from_url(
                self.storage_url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
            self._storage = RedisStorage(
                "async+" + self.storage_url,
                wrap_exceptions=True,
                implementation="redispy",
                key_prefix=self.key_prefix,
                connection_pool=self._pool,
            )
            if not await self._storage.check():
                logger.warning(
                    "rate limits: the storage at %s (%s) does not answer; requests are served "
                    "unlimited until it does",
                    _redacted(self.storage_url),
                    STORAGE_SETTING,
                )
        else:
            self._storage = MemoryCounters(self.clock)
        self._strategy = FixedWindowRateLimiter(self._storage)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.disconnect()
            self._pool = None
        self._storage = None
        self._strategy = None

    async def charge(self, key: str, cost: int) -> Charge:
        """Spend `cost` points of `key`'s budget, or none when they are not all there."""
        storage, strategy = self._opened()
        try:
            if cost <= 0:
                return Charge(key, cost, True, await self._status(strategy, key))
            # What FixedWindowRateLimiter.hit does (an increment compared with the budget), with
            # the count kept: it gives the status with one round trip to Redis fewer.
            counter = await self._add(storage, key, cost)
            allowed = counter <= self.budget.points
            if not allowed:
                counter = await self._add(storage, key, -cost)
            status = await self._counted(storage, key, counter)
        except STORAGE_FAULTS as error:
            self._storage_failed("charge", error)
            return Charge(key, cost, True, None)
        return Charge(key, cost, allowed, status)

    async def give_back(self, charge: Charge, points: int) -> RateLimitStatus | None:
        """Return `points` of what `charge` spent (it cost less than requested), unless its window
        has ended meanwhile: points never move into the next window. The budget afterwards."""
        storage, strategy = self._opened()
        points = min(points, charge.cost)
        try:
            if (
                charge.allowed
                and points > 0
                and charge.status is not None
                and self.clock() < charge.status.reset_at
            ):
                counter = await self._add(storage, charge.key, -points)
                return await self._counted(storage, charge.key, counter)
            return await self._status(strategy, charge.key)
        except STORAGE_FAULTS as error:
            self._storage_failed("refund", error)
            return charge.status

    async def status(self, key: str) -> RateLimitStatus | None:
        _, strategy = self._opened()
        try:
            return await self._status(strategy, key)
        except STORAGE_FAULTS as error:
            self._storage_failed("status", error)
            return None

    async def clear(self, key: str) -> None:
        """Start `key`'s window afresh (the whole budget back)."""
        _, strategy = self._opened()
        await strategy.clear(self.item, key)

    async def _add(self, storage: Storage, key: str, points: int) -> int:
        """Add `points` (negative: give back) to the key's count; the count afterwards."""
        storage_key = self.item.key_for(key)
        counter = await storage.incr(storage_key, self.item.get_expiry(), amount=points)
        if counter < 0:
            # The window ended between the charge and this: the key is a new window's now, and a
            # negative count would be points given in advance. Bring it back to zero.
            counter = await storage.incr(storage_key, self.item.get_expiry(), amount=-counter)
        return counter

    async def _status(self, strategy: FixedWindowRateLimiter, key: str) -> RateLimitStatus:
        stats = await strategy.get_window_stats(self.item, key)
        return self._build(self.budget.points - stats.remaining, stats.reset_time)

    async def _counted(self, storage: Storage, key: str, counter: int) -> RateLimitStatus:
        return self._build(counter, await storage.get_expiry(self.item.key_for(key)))

    def _build(self, counter: int, window_end: float) -> RateLimitStatus:
        limit = self.budget.points
        remaining = min(limit, max(0, limit - counter))
        used = limit - remaining
        window = self.budget.window_seconds
        # An unused budget has no window yet: one would start now.
        reset_at = window_end if used else self.clock() + window
        return RateLimitStatus(limit, remaining, used, reset_at, window)

    def _opened(self) -> tuple[Storage, FixedWindowRateLimiter]:
        assert self._storage is not None and self._strategy is not None, "start() first"
        return self._storage, self._strategy

    def _storage_failed(self, action: str, error: Exception) -> None:
        # One line, no traceback: while Redis is down this happens on every request.
        logger.warning(
            "rate limits: the storage failed during %s (%s); the request is served unlimited",
            action,
            error,
        )
        if self.on_storage_error is not None:
            self.on_storage_error()


def check_storage_url(raw: str) -> str:
    """'' for memory, else a Redis URL; anything else is refused naming the setting."""
    url = raw.strip()
    if url in ("", "memory://"):
        return ""
    if url.startswith(REDIS_SCHEMES) and len(url) > len("redis://"):
        return url
    raise SettingsError(
        f"{STORAGE_SETTING} must be empty (memory of each worker) or a Redis URL like "
        f"redis://127.0.0.1:6379/0, got {raw!r}"
    )


def _redacted(url: str) -> str:
    """The URL without a password, for logs."""
    scheme, _, rest = url.partition("://")
    _, at, host = rest.rpartition("@")
    return f"{scheme}://{'***@' if at else ''}{host}"


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"{unit}" if count == 1 else f"{count} {unit}s"
    return "second" if seconds == 1 else f"{seconds} seconds"
