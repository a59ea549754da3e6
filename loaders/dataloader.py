"""aiodataloader, made safe for graphql-core's cancellations.

graphql-core cancels sibling field tasks when a non-null field fails. A plain DataLoader then has
a *cancelled* future in its cache (awaiting a future from a cancelled task cancels the future),
which every later load of that key would get. This subclass binds the running loop, shields the
shared future from any one waiter's cancellation, and drops a cancelled future if one is found.

aiodataloader runs each batch in a task of its own, which nobody would cancel when the request that
asked for it is abandoned (deadline, client gone): its SQL would run on. So every batch task is
registered in the request's `InFlight` while it runs, and `InFlight.cancel()` stops them (asyncpg
then cancels the statement on the server); the keys of a cancelled batch get cancelled futures,
so whoever still waits on them is cancelled too rather than waiting forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from aiodataloader import DataLoader, Loader

K = TypeVar("K")
V = TypeVar("V")

_NO_KEY: Any = object()  # no cache key given (None could be one)

BatchLoadFn = Callable[[list[K]], Awaitable[Any]]
Finish = Callable[[list[K], Any], Sequence[V | BaseException]]


class InFlight:
    """The batch loads running for one request (all its loader sets), so it can stop them."""

    __slots__ = ("closed", "tasks")

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        self.closed = False

    def cancel(self, *, close: bool = True) -> None:
        """Cancel every batch still running; with `close`, those that would start later too."""
        self.closed = self.closed or close
        for task in list(self.tasks):
            # Once only: a second cancellation would interrupt the clean-up of the first (the
            # driver's request to the server to cancel the statement, the connection's return).
            if not task.cancelling():
                task.cancel()


class SafeDataLoader(DataLoader, Generic[K, V]):  # type: ignore[type-arg]
    def __init__(
        self,
        batch_load_fn: BatchLoadFn[K],
        *,
        max_batch_size: int | None = None,
        cache_key: Callable[[K], Hashable] | None = None,
        inflight: InFlight | None = None,
        finish: Finish[K, V] | None = None,
    ) -> None:
        """`batch_load_fn(keys)` loads the keys; its outcome is the values in the keys' order,
        or what `finish(keys, outcome)` makes of it (then `batch_load_fn` may be a plain function
        returning the awaitable: one coroutine frame fewer for every hand-off of its SQL)."""
        # Not DataLoader.__init__: its checks cost more than a small request's batch, and the
        # batch runs here (`_run_batch`), tracked in `inflight`, with no closure over `self`: a
        # loader in a reference cycle would be freed only by the garbage collector, whose runs a
        # small request would otherwise pay for.
        self.loop = asyncio.get_running_loop()
        self._load_batch = batch_load_fn
        self.max_batch_size = max_batch_size
        self.get_cache_key = cache_key if cache_key is not None else _same
        self._cache: dict[Hashable, asyncio.Future[V]] = {}
        self._queue: list[Loader] = []
        self._inflight = inflight if inflight is not None else InFlight()
        self._finish = finish
        self._waiters = {}

    # Each shared future's waiters (see `load`): settled in the very step that settles it.
    _waiters: dict[asyncio.Future[Any], list[tuple[asyncio.Future[Any], bool]]]

    def load(self, key: K) -> asyncio.Future[V]:
        """A future of the key's value that only its awaiter's cancellation cancels.

        Not `asyncio.shield`, nor `asyncio.wait`: both learn of the shared future through its
        done callbacks, each one more turn of the event loop (two to three per field and per
        level, on SQLite each as dear as a thread hand-off). The batch settles the waiter itself.
        """
        shared = self._shared_future(key)
        if shared.done():
            return shared  # awaiting a done future never suspends, so nothing can cancel it
        return self._waiter(shared, carries=True)

    async def load_level(self, keys: Sequence[K]) -> list[V | BaseException]:
        """Values (or the exceptions that stand for them) of all `keys`, in order, for one await.

        The compiled executor asks for a whole level of a query at once. The keys join the same
        queue and cache as `load`, so they batch with concurrent per-key loads, but nothing here
        costs a waiter per key: waiting on the futures still pending is enough.
        """
        by_key: dict[Hashable, asyncio.Future[V]] = {}
        futures = []
        for key in keys:  # a level often holds one parent many times (many-to-many)
            cache_key = self.get_cache_key(key)
            future = by_key.get(cache_key)
            if future is None:
                future = by_key[cache_key] = self._shared_future(key, cache_key)
            futures.append(future)
        for future in by_key.values():
            if not future.done():
                # Our own waiter: cancelling this task never cancels the shared future.
                await self._waiter(future, carries=False)
        return [_outcome(future) for future in futures]

    def _waiter(self, shared: asyncio.Future[V], *, carries: bool) -> asyncio.Future[V]:
        """A future settled with `shared`; with its value only if it `carries` it (a waiter
        that only signals holds no rows past the request, whatever the event loop keeps)."""
        waiter: asyncio.Future[V] = self.loop.create_future()
        waiters = self._waiters.get(shared)
        if waiters is None:
            self._waiters[shared] = [(waiter, carries)]
        else:
            waiters.append((waiter, carries))
        return waiter

    def do_resolve_reject(self, key: K, future: asyncio.Future[V]) -> None:
        # aiodataloader schedules a callback that makes a task that makes the batch's task: three
        # turns before the batch starts. The batch's own task, made now, starts on the next turn,
        # with every key queued until then.
        self._queue.append(Loader(key=key, future=future))
        if len(self._queue) == 1:
            self.loop.create_task(self._run_batch())

    async def _run_batch(self, queue: list[Loader] | None = None) -> None:
        """Load the keys of `queue`, or (the task made at the first key) of everything queued
        since. One coroutine, the batch function's awaitable awaited right here: each frame
        between the task and the SQL is resumed again at each of aiosqlite's thread hand-offs
        (nine per statement)."""
        if queue is None:
            queue = self._queue
            self._queue = []
            size = self.max_batch_size
            if size and size < len(queue):
                for start in range(size, len(queue), size):
                    self.loop.create_task(self._run_batch(queue[start : start + size]))
                queue = queue[:size]
        keys = [entry.key for entry in queue]
        inflight = self._inflight
        task = asyncio.current_task()
        assert task is not None
        try:
            try:
                if inflight.closed:
                    raise asyncio.CancelledError
                inflight.tasks.add(task)
                outcome = await self._load_batch(keys)
            except asyncio.CancelledError:
                self._abandon(keys)
                raise
            finally:
                inflight.tasks.discard(task)
            values = list(outcome if self._finish is None else self._finish(keys, outcome))
            if len(values) != len(keys):
                raise TypeError(
                    f"the batch function returned {len(values)} values for {len(keys)} keys"
                )
        except Exception as error:  # no key is cached, so the next load tries again
            for entry in queue:
                self.clear(entry.key)
                self._settle(entry.future, error)
            return
        for entry, value in zip(queue, values, strict=True):
            self._settle(entry.future, value)

    def _settle(self, future: asyncio.Future[Any], value: Any) -> None:
        if not future.done():
            if isinstance(value, Exception):
                future.set_exception(value)
            else:
                future.set_result(value)
        for waiter, carries in self._waiters.pop(future, ()):
            if waiter.done():  # its awaiter was cancelled
                continue
            if future.cancelled():
                waiter.cancel()
            elif not carries:
                waiter.set_result(None)
            elif (error := future.exception()) is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(future.result())

    def _abandon(self, keys: list[K]) -> None:
        for key in keys:
            cache_key = self.get_cache_key(key)
            future = self._cache.pop(cache_key, None)
            if future is not None and not future.done():
                future.cancel()
                self._settle(future, None)

    def _shared_future(self, key: K, cache_key: Hashable = _NO_KEY) -> asyncio.Future[V]:
        """The request's one future of `key`: cached, or new and queued (aiodataloader's `load`,
        less its checks, the key computed once, and never a cancelled future)."""
        if key is None:
            raise TypeError("a loader's key cannot be None")
        if cache_key is _NO_KEY:
            cache_key = self.get_cache_key(key)
        cached = self._cache.get(cache_key)
        if cached is not None and not cached.cancelled():
            return cached
        future: asyncio.Future[V] = self.loop.create_future()
        self._cache[cache_key] = future
        self.do_resolve_reject(key, future)
        return future


def _same(key: Any) -> Hashable:
    return key  # type: ignore[no-any-return]


def _outcome(future: asyncio.Future[Any]) -> Any:
    error = future.exception()
    return future.result() if error is None else error
