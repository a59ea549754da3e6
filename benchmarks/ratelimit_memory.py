"""Cost of one rate-limit charge in process memory as distinct clients pile up in one window:
Batchery's counters (app/ratelimit_memory.py) against `limits`' own MemoryStorage.

    .venv/bin/python -m benchmarks.ratelimit_memory
"""

from __future__ import annotations

import asyncio
import time
import uuid

from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.util import parse

from app.ratelimit_memory import MemoryCounters

CLIENTS = (1_000, 10_000, 30_000)


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


async def main() -> None:
    await measure("MemoryCounters", MemoryCounters())
    await measure("limits MemoryStorage", MemoryStorage())


if __name__ == "__main__":
    asyncio.run(main())
