"""Rate-limit counters in process memory: a `limits` storage whose cost per charge does not grow
with the number of clients.

`limits`' own MemoryStorage sweeps every counter after every increment once the event loop has
turned. Measured (`python -m benchmarks.ratelimit`): 0.07 ms per charge with 1,000 clients
in the window, 0.9 ms with 10,000, 3.0 ms with 30,000; these counters stay near 0.01 ms. Else a
client rotating its key, or its addresses, would make every request slower for every client.
Here a counter that has expired is dropped when it is next read, and a sweep runs only when the
table has doubled since the last one, so each charge costs O(1), amortised, and the table holds
at most about twice the live counters.

Only what the fixed-window strategy uses is stored: a count and the end of its window. The clock
can be passed in, so tests move time instead of waiting for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from limits.aio.storage import Storage

MIN_SWEEP_SIZE = 1024


class MemoryCounters(Storage):
    STORAGE_SCHEME = ["batchery+memory"]

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.clock = clock
        # key -> (count, end of its window in clock seconds)
        self.counters: dict[str, tuple[int, float]] = {}
        self.sweep_at = MIN_SWEEP_SIZE

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = self.clock()
        count, ends = self._live(key, now)
        if not ends:
            ends = now + expiry
        count += amount
        self.counters[key] = (count, ends)
        if len(self.counters) >= self.sweep_at:
            self._sweep(now)
        return count

    async def get(self, key: str) -> int:
        return self._live(key, self.clock())[0]

    async def get_expiry(self, key: str) -> float:
        now = self.clock()
        return self._live(key, now)[1] or now

    async def check(self) -> bool:
        return True

    async def reset(self) -> int | None:
        count = len(self.counters)
        self.counters.clear()
        return count

    async def clear(self, key: str) -> None:
        self.counters.pop(key, None)

    def _live(self, key: str, now: float) -> tuple[int, float]:
        """The key's count and window end, or (0, 0) when it has none or its window is over."""
        entry = self.counters.get(key)
        if entry is None:
            return 0, 0.0
        if entry[1] <= now:
            del self.counters[key]
            return 0, 0.0
        return entry

    def _sweep(self, now: float) -> None:
        self.counters = {key: entry for key, entry in self.counters.items() if entry[1] > now}
        self.sweep_at = max(MIN_SWEEP_SIZE, 2 * len(self.counters))
