"""The in-memory counters: a fixed window per key, and a table that does not grow with the
counters that have expired."""

from __future__ import annotations

from app.ratelimit_memory import MIN_SWEEP_SIZE, MemoryCounters


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


async def test_a_counter_counts_within_its_window_and_starts_again_after_it():
    clock = Clock()
    counters = MemoryCounters(clock)
    assert await counters.incr("k", 10, 3) == 3
    clock.now += 5
    assert await counters.incr("k", 10, 2) == 5
    assert await counters.get("k") == 5
    assert await counters.get_expiry("k") == 510.0  # from the first increment, not the last
    clock.now += 5
    assert await counters.get("k") == 0
    assert await counters.get_expiry("k") == clock.now
    assert await counters.incr("k", 10, 1) == 1
    assert await counters.get_expiry("k") == 520.0


async def test_clear_and_reset_forget_counters():
    counters = MemoryCounters(Clock())
    await counters.incr("a", 10)
    await counters.incr("b", 10)
    await counters.clear("a")
    assert (await counters.get("a"), await counters.get("b")) == (0, 1)
    assert await counters.reset() == 1
    assert await counters.get("b") == 0


async def test_expired_counters_are_swept_as_new_ones_arrive():
    clock = Clock()
    counters = MemoryCounters(clock)
    for round_ in range(10):
        for i in range(3 * MIN_SWEEP_SIZE):
            await counters.incr(f"{round_}-{i}", 1)
        clock.now += 2  # every counter of this round has expired
        # Never more than twice the live counters (or the minimum sweep size) are kept.
        assert len(counters.counters) <= 2 * 3 * MIN_SWEEP_SIZE
    live = await counters.incr("last", 1)
    assert live == 1
