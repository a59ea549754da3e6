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
from collections.abc import Callable, Coroutine, Hashable, Sequence
from typing import Any, Generic, TypeVar, cast

from aiodataloader import DataLoader

K = TypeVar("K")
V = TypeVar("V")

BatchLoadFn = Callable[[list[K]], Coroutine[Any, Any, Sequence[V | BaseException]]]


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
        batch_load_fn: BatchLoadFn[K, V],
        *,
        max_batch_size: int | None = None,
        cache_key: Callable[[K], Hashable] | None = None,
        inflight: InFlight | None = None,
    ) -> None:
        inflight = inflight if inflight is not None else InFlight()

        async def tracked(keys: list[K]) -> Sequence[V | BaseException]:
            task = asyncio.current_task()
            assert task is not None
            try:
                if inflight.closed:
                    raise asyncio.CancelledError
                inflight.tasks.add(task)
                return await batch_load_fn(keys)
            except asyncio.CancelledError:
                self._abandon(keys)
                raise
            finally:
                inflight.tasks.discard(task)

        super().__init__(
            cast(Any, tracked),
            max_batch_size=max_batch_size,
            get_cache_key=cache_key,
            loop=asyncio.get_running_loop(),
        )

    def load(self, key: K) -> asyncio.Future[V]:
        shared = self._shared_future(key)
        return asyncio.shield(shared)

    async def load_level(self, keys: Sequence[K]) -> list[V | BaseException]:
        """Values (or the exceptions that stand for them) of all `keys`, in order, for one await.

        The compiled executor asks for a whole level of a query at once. The keys join the same
        queue and cache as `load`, so they batch with concurrent per-key loads, but nothing here
        costs a shield or a waiter per key: waiting on the futures still pending is enough.
        """
        by_key: dict[Hashable, asyncio.Future[V]] = {}
        futures = []
        for key in keys:  # a level often holds one parent many times (many-to-many)
            cache_key = self.get_cache_key(key)
            future = by_key.get(cache_key)
            if future is None:
                future = by_key[cache_key] = self._shared_future(key)
            futures.append(future)
        for future in by_key.values():
            if not future.done():
                # `wait` never cancels the shared future, even when this task is cancelled.
                await asyncio.wait((future,))
        return [_outcome(future) for future in futures]

    def _abandon(self, keys: list[K]) -> None:
        for key in keys:
            cache_key = self.get_cache_key(key)
            future = self._cache.pop(cache_key, None)
            if future is not None and not future.done():
                future.cancel()

    def _shared_future(self, key: K) -> asyncio.Future[V]:
        cached = self._cache.get(self.get_cache_key(key))
        if cached is not None and cached.cancelled():
            self.clear(key)
        shared: asyncio.Future[V] = super().load(key)
        return shared


def _outcome(future: asyncio.Future[Any]) -> Any:
    error = future.exception()
    return future.result() if error is None else error
