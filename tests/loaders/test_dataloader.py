"""SafeDataLoader: batching, and what happens when a waiter is cancelled."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from loaders.dataloader import SafeDataLoader


class Recorder:
    """A batch function that records its calls and can be held open until released."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    async def load(self, keys: list[int]) -> list[int]:
        self.calls.append(list(keys))
        self.entered.set()
        await self.release.wait()
        return [key * 10 for key in keys]


async def test_concurrent_loads_are_one_batch():
    recorder = Recorder()
    loader = SafeDataLoader(recorder.load)
    values = await asyncio.gather(*(loader.load(k) for k in [3, 1, 2, 3]))
    assert values == [30, 10, 20, 30]
    assert recorder.calls == [[3, 1, 2]]


async def test_cancelled_waiter_does_not_cancel_other_waiters_of_the_same_key():
    recorder = Recorder()
    recorder.release.clear()
    loader = SafeDataLoader(recorder.load)
    doomed = asyncio.ensure_future(loader.load(1))
    survivor = asyncio.ensure_future(loader.load(1))
    await recorder.entered.wait()  # the batch is in flight
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    recorder.release.set()
    assert await survivor == 10
    # ...and the cached value is a real one, served without a second batch.
    assert await loader.load(1) == 10
    assert recorder.calls == [[1]]


async def test_a_cached_cancelled_future_is_never_served():
    recorder = Recorder()
    loader = SafeDataLoader(recorder.load)
    # Simulate what a plain aiodataloader leaves behind after graphql-core cancels a field.
    dead = asyncio.get_running_loop().create_future()
    dead.cancel()
    loader._cache[7] = dead
    assert await loader.load(7) == 70
    assert recorder.calls == [[7]]


async def test_failed_batch_rejects_every_key_and_is_retried_next_time():
    attempts: list[list[int]] = []

    async def flaky(keys: list[int]) -> list[int]:
        attempts.append(keys)
        if len(attempts) == 1:
            raise RuntimeError("database went away")
        return keys

    loader = SafeDataLoader(flaky)
    results = await asyncio.gather(loader.load(1), loader.load(2), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await loader.load(1) == 1
    assert attempts == [[1, 2], [1]]


async def test_max_batch_size_splits_batches():
    recorder = Recorder()
    loader = SafeDataLoader(recorder.load, max_batch_size=2)
    await asyncio.gather(*(loader.load(k) for k in range(5)))
    assert recorder.calls == [[0, 1], [2, 3], [4]]


async def test_binds_the_running_loop():
    loader = SafeDataLoader(Recorder().load)
    assert loader.loop is asyncio.get_running_loop()


async def test_cache_key_maps_equal_parents_to_one_load():
    recorder = Recorder()
    loader = SafeDataLoader(recorder.load, cache_key=lambda key: key % 10)
    values = await asyncio.gather(loader.load(1), loader.load(11))
    assert values == [10, 10]
    assert recorder.calls == [[1]]


async def test_a_loader_that_ran_a_batch_is_freed_without_the_collector():
    # A loader in a reference cycle (say, with a closure over itself) lives until the garbage
    # collector runs, and a request that leaves one behind pays for those runs: ~0.25 ms of a
    # 2 ms request (docs/performance.md).
    gc.disable()
    try:
        loader = SafeDataLoader(Recorder().load, max_batch_size=1)
        assert await asyncio.gather(loader.load(1), loader.load(2)) == [10, 20]
        assert await loader.load_level([3]) == [30]
        freed = weakref.ref(loader)
        del loader
        assert freed() is None
    finally:
        gc.enable()
