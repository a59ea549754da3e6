"""The taskiq broker jobs travel on, and a worker's receiving loop.

Embedded (no broker URL): taskiq's `InMemoryBroker`, which runs a kicked task as an asyncio task
of the API process itself. Redis: taskiq-redis's `RedisStreamBroker`, chosen over
`ListQueueBroker` because a stream message stays pending in the consumer group until the worker
acknowledges it, and a pending message whose worker died is claimed again by another
(`XAUTOCLAIM` after `idle_timeout`); a list pops the message, and a killed worker loses it. The
jobs table stays the source of truth either way: a message only says "job X is waiting", and
the reaper (app/bulk/jobs/worker.py) finds every job whose lease ran out even if no message
does.

A message is acknowledged once `run_job` returns (the job finished, or someone else holds it).
Each worker reads one message at a time (`xread_count=1`) and holds at most as many as it runs
jobs at once, so waiting jobs go to whichever worker is free rather than piling up on one.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError
from taskiq import AsyncBroker, InMemoryBroker
from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver
from taskiq_redis import RedisStreamBroker

from app.bulk.jobs.config import JobsConfig

TASK_NAME = "batchery.run_job"

RunJob = Callable[[str], Awaitable[None]]


def make_broker(config: JobsConfig, consumer: str | None = None) -> AsyncBroker:
    """`consumer`: the worker's name in the Redis consumer group (XINFO CONSUMERS shows which
    process holds which message); an API process, which only sends, needs none."""
    if config.embedded:
        # Concurrency is bounded by the worker's own slots (JobWorker), not here: the in-memory
        # broker runs every kicked task at once.
        return InMemoryBroker(max_async_tasks=config.worker_concurrency)
    return RedisStreamBroker(
        config.broker_url,
        queue_name=f"{config.key_prefix}:jobs:queue",
        consumer_group_name=f"{config.key_prefix}:jobs",
        consumer_name=consumer,
        xread_count=1,
        # A message unacknowledged this long belongs to a dead worker (a live one holding a job
        # that long renews its lease, so a second delivery finds the job taken and only acks).
        idle_timeout=int(config.lease_seconds * 2 * 1000),
        unacknowledged_lock_timeout=config.lease_seconds,
        # Every task is one job id; trimming keeps the stream from growing forever. Approximate
        # trimming never drops entries newer than the last ~100 (Redis trims whole nodes).
        maxlen=100_000,
    )


class QueueUnavailable(RuntimeError):
    """The shared queue (Redis) does not answer at start."""


async def start(broker: AsyncBroker, config: JobsConfig) -> None:
    """Connect (Redis: make the consumer group, so no message kicked from now on is missed by
    a worker that starts later). QueueUnavailable, naming the setting, when Redis is away."""
    try:
        await broker.startup()
    except (OSError, RedisError) as error:
        shown = re.sub(r"(://[^:/@]*:)[^/?#]*@", r"\1***@", config.broker_url)
        raise QueueUnavailable(
            f"BATCHERY_JOBS_BROKER: the Redis at {shown} does not answer ({error}); start it, "
            "or leave the setting empty to run jobs inside the API process"
        ) from None


async def forget_consumer(broker: AsyncBroker) -> None:
    """A worker stopping cleanly leaves the consumer group (each start is a new consumer, and
    the group would otherwise list every one ever), unless it still has messages pending: those
    stay for another worker to claim."""
    if not isinstance(broker, RedisStreamBroker):
        return
    async with Redis(connection_pool=broker.connection_pool) as redis:
        mine = await redis.xpending_range(
            broker.queue_name,
            broker.consumer_group_name,
            min="-",
            max="+",
            count=1,
            consumername=broker.consumer_name,
        )
        if not mine:
            await redis.xgroup_delconsumer(
                broker.queue_name, broker.consumer_group_name, broker.consumer_name
            )


def register(broker: AsyncBroker, run_job: RunJob) -> None:
    """Make `run_job(job_id)` the broker's one task."""

    async def task(job_id: str) -> None:
        await run_job(job_id)

    broker.register_task(task, task_name=TASK_NAME)


async def enqueue(broker: AsyncBroker, job_id: str) -> None:
    task = broker.find_task(TASK_NAME)
    assert task is not None, "register() the task first"
    await task.kiq(job_id)


async def receive(broker: AsyncBroker, concurrency: int, finish: asyncio.Event) -> None:
    """A worker's loop: take messages until `finish` is set (no new ones taken after that;
    the caller stops the jobs still running). The broker is started by the caller."""
    receiver = Receiver(
        broker,
        max_async_tasks=concurrency,
        max_prefetch=0,
        run_startup=False,
        ack_type=AcknowledgeType.WHEN_EXECUTED,
        propagate_exceptions=False,
    )
    await receiver.listen(finish)
