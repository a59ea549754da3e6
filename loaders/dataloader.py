"""aiodataloader, made safe for graphql-core's cancellations.

graphql-core cancels sibling field tasks when a non-null field fails. A plain DataLoader then has
a *cancelled* future in its cache (awaiting a future from a cancelled task cancels the future),
which every later load of that key would get. This subclass binds the running loop, shields the
shared future from any one waiter's cancellation, and drops a cancelled future if one is found.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable, Sequence
from typing import Any, Generic, TypeVar, cast

from aiodataloader import DataLoader

K = TypeVar("K")
V = TypeVar("V")

BatchLoadFn = Callable[[list[K]], Coroutine[Any, Any, Sequence[V | BaseException]]]


class SafeDataLoader(DataLoader, Generic[K, V]):  # type: ignore[type-arg]
    def __init__(
        self,
        batch_load_fn: BatchLoadFn[K, V],
        *,
        max_batch_size: int | None = None,
        cache_key: Callable[[K], Hashable] | None = None,
    ) -> None:
        super().__init__(
            cast(Any, batch_load_fn),
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

    def _shared_future(self, key: K) -> asyncio.Future[V]:
        cached = self._cache.get(self.get_cache_key(key))
        if cached is not None and cached.cancelled():
            self.clear(key)
        shared: asyncio.Future[V] = super().load(key)
        return shared


def _outcome(future: asyncio.Future[Any]) -> Any:
    error = future.exception()
    return future.result() if error is None else error
