"""Two real `batchery serve` processes with one Redis share one rate-limit budget: what one worker
spends, the other sees, and the request over budget is refused by either."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live.killable import BATCHERY, KillableServer
from tests.redis import REDIS_URL, redis_available

pytestmark = pytest.mark.skipif(not redis_available(), reason=f"no Redis at {REDIS_URL}")

QUERY = '{ bakery(id: "1") { name } }'
QUERY_COST = 11  # a database read (10) returning one object (1): README, Query cost


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[KillableServer, KillableServer]]:
    env = {
        "BATCHERY_DATA_DIR": str(tmp_path),
        "BATCHERY_LOG_LEVEL": "info",
        "BATCHERY_RATE_LIMIT_ENABLED": "true",
        "BATCHERY_RATE_LIMIT": f"{4 * QUERY_COST}/hour",
        "BATCHERY_RATE_LIMIT_STORAGE": REDIS_URL,
        # This test's own keys: other tests and other runs sharing the Redis never interfere.
        "BATCHERY_RATE_LIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex}",
    }
    one, two = KillableServer(env), KillableServer(env)
    seed = [BATCHERY, "seed", "--bakeries", "2", "--orders-per-bakery", "1", "--suppliers", "1"]
    subprocess.run(seed, env=one.env, check=True, capture_output=True, timeout=120)
    try:
        # Started means listening: KillableServer waits for uvicorn's "Uvicorn running on".
        yield one.start(), two.start()
    finally:
        for worker in (one, two):
            worker.stop()
        forget(env["BATCHERY_RATE_LIMIT_KEY_PREFIX"])


def forget(prefix: str) -> None:
    """Remove the test's counters from the shared Redis."""
    import redis

    with redis.Redis.from_url(REDIS_URL) as client:
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)


def test_two_workers_sharing_redis_spend_one_budget(workers):
    one, two = workers
    with httpx.Client(timeout=30) as client:

        def ask(worker: KillableServer) -> httpx.Response:
            return client.post(worker.url + "/graphql", json={"query": QUERY})

        answers = [ask(one), ask(two), ask(one), ask(two)]
        assert [a.status_code for a in answers] == [200] * 4
        # Each worker saw what the other had spent.
        used = [str(n * QUERY_COST) for n in (1, 2, 3, 4)]
        remaining = [str(n * QUERY_COST) for n in (3, 2, 1, 0)]
        assert [a.headers["x-ratelimit-used"] for a in answers] == used
        assert [a.headers["x-ratelimit-remaining"] for a in answers] == remaining

        for worker in (one, two):
            refused = ask(worker)
            assert refused.status_code == 429
            assert refused.json()["errors"][0]["extensions"]["code"] == "THROTTLED"
            assert int(refused.headers["retry-after"]) > 0
            assert refused.headers["x-ratelimit-used"] == str(4 * QUERY_COST)
