"""Live progress of jobs, between the process that runs a job and those that watch it.

`ProgressBus.publish(event)` is called by the runner; `subscribe(job_id)` is an async context
manager giving an async iterator of that job's events from the moment it is entered (events
published before are not replayed: a watcher reads the job's row for those, see
`app/bulk/jobs/watch.py`). `MemoryBus` serves one process (jobs embedded in the API);
`RedisBus` one Redis pub/sub channel per job, so a worker process's progress reaches a watcher
on any API process.

Each subscription holds a bounded mailbox: a watcher that reads slower than a job progresses
loses intermediate events (the oldest first), never the final one, and never sees counts go
backwards since what it keeps stays in publishing order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.bulk.jobs.model import JobCounts, JobProgress, JobStatus

logger = logging.getLogger("batchery.jobs")

# Events a subscription keeps while its reader is busy; a handful is plenty, since each event
# carries the job's whole state and only the newest matters.
MAILBOX_SIZE = 16


class Subscription(Protocol):
    def __aiter__(self) -> AsyncIterator[JobProgress]: ...

    async def next(self, within: float | None) -> JobProgress | None:
        """The next event, or None if none came `within` seconds (None: wait for one)."""


class ProgressBus(Protocol):
    async def publish(self, event: JobProgress) -> None: ...

    def subscribe(self, job_id: str) -> contextlib.AbstractAsyncContextManager[Subscription]: ...

    async def close(self) -> None: ...


class Mailbox:
    """A subscription's events: bounded, dropping the oldest intermediate event when full."""

    def __init__(self, size: int = MAILBOX_SIZE) -> None:
        assert size >= 2, "room for an intermediate and the final event"
        self._events: deque[JobProgress] = deque()
        self._size = size
        self._ready = asyncio.Event()
        self.dropped = 0

    def put(self, event: JobProgress) -> None:
        if len(self._events) >= self._size:
            for index, queued in enumerate(self._events):
                if not queued.final:
                    del self._events[index]
                    self.dropped += 1
                    break
            else:
                return  # only final events queued: a job has one, this is a duplicate
        self._events.append(event)
        self._ready.set()

    async def next(self, within: float | None) -> JobProgress | None:
        if not self._events:
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), within)
            except TimeoutError:
                return None
        return self._events.popleft()

    async def __aiter__(self) -> AsyncIterator[JobProgress]:
        while True:
            event = await self.next(None)
            assert event is not None
            yield event


class MemoryBus:
    """One process: publishing hands the event to each subscription's mailbox."""

    def __init__(self, mailbox_size: int = MAILBOX_SIZE) -> None:
        self._subscribers: dict[str, set[Mailbox]] = {}
        self._mailbox_size = mailbox_size

    async def publish(self, event: JobProgress) -> None:
        for mailbox in self._subscribers.get(event.job_id, ()):
            mailbox.put(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, job_id: str) -> AsyncIterator[Subscription]:
        mailbox = Mailbox(self._mailbox_size)
        self._subscribers.setdefault(job_id, set()).add(mailbox)
        try:
            yield mailbox
        finally:
            mailboxes = self._subscribers[job_id]
            mailboxes.discard(mailbox)
            if not mailboxes:
                del self._subscribers[job_id]

    async def close(self) -> None:
        self._subscribers.clear()


class RedisBus:
    """Redis pub/sub, one channel per job (`<prefix>:jobs:progress:<id>`).

    A subscription has a pub/sub connection of its own for as long as it is open: a watcher is
    a client connection (WebSocket, SSE) anyway, and the subscription is confirmed by the
    server before `subscribe` returns, so nothing published afterwards is missed.
    """

    def __init__(self, url: str, prefix: str, mailbox_size: int = MAILBOX_SIZE) -> None:
        # A connect that hangs (a host gone) must not hold a job's progress call for minutes; no
        # read timeout, though: a subscription waits for events as long as a job runs.
        self._redis: Redis = Redis.from_url(url, socket_connect_timeout=5)
        self._prefix = prefix
        self._mailbox_size = mailbox_size

    def channel(self, job_id: str) -> str:
        return f"{self._prefix}:jobs:progress:{job_id}"

    async def publish(self, event: JobProgress) -> None:
        await self._redis.publish(self.channel(event.job_id), encode(event))

    @contextlib.asynccontextmanager
    async def subscribe(self, job_id: str) -> AsyncIterator[Subscription]:
        mailbox = Mailbox(self._mailbox_size)
        channel = self.channel(job_id)
        # redis-py leaves PubSub unannotated.
        pubsub: Any = self._redis.pubsub()
        try:
            try:
                await pubsub.subscribe(channel)
                # The confirmation: from here on the server delivers everything published.
                while (await pubsub.get_message(timeout=None)) is None:
                    pass
            except (OSError, RedisError) as error:
                # No live events: the watcher reads the job's row now and then instead.
                logger.warning("progress of job %s: Redis does not answer (%s)", job_id, error)
                yield mailbox
                return
            reader = asyncio.create_task(_forward(pubsub, mailbox), name=f"progress {job_id}")
            try:
                yield mailbox
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
        finally:
            with contextlib.suppress(OSError, RedisError):
                await pubsub.aclose()

    async def close(self) -> None:
        await self._redis.aclose()


async def _forward(pubsub: Any, mailbox: Mailbox) -> None:
    while True:
        try:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
        except (OSError, RedisError) as error:
            # The watcher goes on from the job's row (app/bulk/jobs/watch.py polls it).
            logger.warning("progress: Redis connection lost (%s); watchers poll the row", error)
            return
        if message is None or message.get("type") != "message":
            continue
        try:
            mailbox.put(decode(message["data"]))
        except (ValueError, KeyError, TypeError):
            logger.warning("ignored a malformed progress event: %r", message["data"][:200])


def encode(event: JobProgress) -> bytes:
    return orjson.dumps(asdict(event) | {"status": event.status.value})


def decode(data: bytes) -> JobProgress:
    raw = orjson.loads(data)
    return JobProgress(
        job_id=raw["job_id"],
        status=JobStatus(raw["status"]),
        counts=JobCounts(**raw["counts"]),
        rate=raw["rate"],
        eta_seconds=raw["eta_seconds"],
        final=raw["final"],
        at=raw["at"],
    )
