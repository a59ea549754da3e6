"""Cost of one rate-limit charge: in process memory as distinct clients pile up in one window
(Batchery's counters, app/ratelimit_memory.py, against `limits`' own MemoryStorage), and through
`RateLimiter.charge` on memory and on Redis (BENCH_REDIS_URL, default redis://127.0.0.1:6379/0).

    .venv/bin/python -m benchmarks.ratelimit
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.util import parse

from app.ratelimit import Budget, RateLimiter
from app.ratelimit_memory import MemoryCounters

CLIENTS = (1_000, 10_000, 30_000)
CHARGES = 2_000
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


async def measure(name: str, storage: Storage) -> None:
    limiter = FixedWindowRateLimiter(storage)
    item = parse("100/minute")
    for clients in CLIENTS:
        started = time.perf_counter()
        for _ in range(clients):
            await limiter.hit(item, uuid.uuid4().hex)
            await asyncio.sleep(0)  # the event loop turns between requests, as in a server
        per_charge = (time.perf_counter() - started) / clients * 1e6
        print(f"{name:>20}: {clients:>6} new clients, {per_charge:8.1f} µs per charge")


async def charges(name: str, url: str) -> None:
    limiter = RateLimiter(Budget.parse("1000000000/minute"), url, f"bench-{uuid.uuid4().hex}")
    await limiter.start()
    try:
        started = time.perf_counter()
        for _ in range(CHARGES):
            await limiter.charge("client", 11)
        per_charge = (time.perf_counter() - started) / CHARGES * 1e6
        print(f"{name:>20}: RateLimiter.charge {per_charge:8.1f} µs")
        await limiter.clear("client")
    finally:
        await limiter.close()


async def main() -> None:
    await measure("MemoryCounters", MemoryCounters())
    await measure("limits MemoryStorage", MemoryStorage())
    await charges("memory", "")
    await charges("redis", REDIS_URL)


if __name__ == "__main__":
    asyncio.run(main())
