"""A small schema with subscriptions, for testing the subscription transports on their own.

`ticks(upTo)` yields 1..upTo and ends; `forever` yields once, then waits on a queue nobody feeds,
and records (thread-safely: the server runs in another thread) when its generator was closed, so
a test can tell that a client's disconnect ended the stream. `secret` needs the `bulk` scope.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator

import strawberry

from schema.access import BULK, requires

closed = threading.Event()
started = threading.Event()


@strawberry.type
class Query:
    hello: str = "hi"


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self, up_to: int) -> AsyncGenerator[int, None]:
        for tick in range(1, up_to + 1):
            yield tick

    @strawberry.subscription
    async def forever(self) -> AsyncGenerator[int, None]:
        started.set()
        try:
            yield 0
            await asyncio.Queue[int]().get()
            yield 1  # never reached
        finally:
            closed.set()

    @strawberry.subscription(directives=requires(BULK))
    async def secret(self) -> AsyncGenerator[int, None]:
        yield 42


ticker_schema = strawberry.Schema(query=Query, subscription=Subscription)
