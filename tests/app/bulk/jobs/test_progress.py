"""The progress bus: in one process, and through a real Redis between two buses (two processes'
worth: the publishing bus never shares a connection with the subscribing one)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from app.bulk.jobs.model import JobCounts, JobProgress, JobStatus
from app.bulk.jobs.progress import Mailbox, MemoryBus, ProgressBus, RedisBus, decode, encode
from tests.redis import REDIS_URL, redis_available

BUSES = [
    "memory",
    pytest.param(
        "redis",
        marks=pytest.mark.skipif(not redis_available(), reason=f"no Redis at {REDIS_URL}"),
    ),
]


def event(job_id: str, processed: int, *, final: bool = False) -> JobProgress:
    status = JobStatus.COMPLETED if final else JobStatus.RUNNING
    counts = JobCounts(total=100, processed=processed, succeeded=processed, failed=0)
    return JobProgress(job_id, status, counts, rate=10.0, eta_seconds=1.5, final=final, at=1.0)


@pytest_asyncio.fixture(params=BUSES)
async def buses(request: pytest.FixtureRequest) -> AsyncIterator[tuple[ProgressBus, ProgressBus]]:
    """(publisher, subscriber): one bus in memory; two Redis buses under a prefix of this test."""
    if request.param == "memory":
        bus = MemoryBus(mailbox_size=4)
        yield bus, bus
        return
    prefix = f"test-{uuid.uuid4().hex}"
    publisher = RedisBus(REDIS_URL, prefix, mailbox_size=4)
    subscriber = RedisBus(REDIS_URL, prefix, mailbox_size=4)
    yield publisher, subscriber
    await publisher.close()
    await subscriber.close()


async def test_a_subscriber_gets_the_events_of_its_job_in_order(buses):
    publisher, subscriber = buses
    async with subscriber.subscribe("a") as events:
        await publisher.publish(event("b", 1))  # another job's: not seen
        for processed in (10, 20):
            await publisher.publish(event("a", processed))
        await publisher.publish(event("a", 100, final=True))
        got = [await events.next(within=5) for _ in range(3)]
    assert [e.counts.processed if e else None for e in got] == [10, 20, 100]
    assert got[-1] == event("a", 100, final=True)


async def test_events_published_before_subscribing_are_not_replayed(buses):
    publisher, subscriber = buses
    await publisher.publish(event("a", 5))
    async with subscriber.subscribe("a") as events:
        await publisher.publish(event("a", 6))
        first = await events.next(within=5)
    assert first is not None and first.counts.processed == 6


async def test_a_slow_subscriber_loses_intermediate_events_never_the_final_one(buses):
    publisher, subscriber = buses
    async with subscriber.subscribe("a") as events:
        for processed in range(1, 11):
            await publisher.publish(event("a", processed))
        await publisher.publish(event("a", 100, final=True))
        # Each subscription reads into its mailbox on its own: wait for the final event to be in
        # it by reading until it comes; what came before it is what the mailbox kept.
        got: list[JobProgress] = []
        while not got or not got[-1].final:
            got_one = await events.next(within=5)
            assert got_one is not None, f"no final event after {got}"
            got.append(got_one)
    processed = [e.counts.processed for e in got]
    assert processed == sorted(processed), "counts never go backwards"
    assert processed[-1] == 100
    assert len(got) <= 11


async def test_two_subscribers_of_one_job_both_get_its_events(buses):
    publisher, subscriber = buses
    async with subscriber.subscribe("a") as one, subscriber.subscribe("a") as two:
        await publisher.publish(event("a", 100, final=True))
        assert (
            (await one.next(within=5)) == (await two.next(within=5)) == event("a", 100, final=True)
        )


async def test_next_gives_none_when_nothing_comes_in_time(buses):
    _, subscriber = buses
    async with subscriber.subscribe("quiet") as events:
        assert await events.next(within=0.01) is None


def test_a_full_mailbox_drops_the_oldest_intermediate_event_and_keeps_finals():
    mailbox = Mailbox(size=3)
    for processed in (1, 2, 3, 4):
        mailbox.put(event("a", processed))
    mailbox.put(event("a", 100, final=True))
    mailbox.put(event("a", 100, final=True))
    kept = [e.counts.processed for e in mailbox._events]
    assert kept == [4, 100, 100]
    assert mailbox._events[-1].final
    assert mailbox.dropped == 3


def test_events_survive_their_encoding():
    original = event("a", 7)
    assert decode(encode(original)) == original
    assert decode(encode(event("a", 100, final=True))).status is JobStatus.COMPLETED
