"""Two real `batchery serve` processes with one Redis share one rate-limit budget: what one worker
spends, the other sees, and the request over budget is refused by either."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.redis import REDIS_URL, redis_available

pytestmark = pytest.mark.skipif(not redis_available(), reason=f"no Redis at {REDIS_URL}")

BATCHERY = str(Path(sys.executable).with_name("batchery"))
STARTED = "Application startup complete"
START_TIMEOUT_SECONDS = 60
QUERY = '{ bakery(id: "1") { name } }'
QUERY_COST = 11  # a database read (10) returning one object (1): README, Query cost


class Worker:
    """`batchery serve` on a free port; started once uvicorn says so on its log."""

    def __init__(self, env: dict[str, str]) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            [BATCHERY, "serve", "--port", str(self.port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_started(self) -> None:
        while True:
            try:
                line = self.lines.get(timeout=START_TIMEOUT_SECONDS)
            except queue.Empty:
                pytest.fail(f"the worker did not start: {''.join(self.log)}")
            if line is None:
                pytest.fail(f"the worker exited: {''.join(self.log)}")
            self.log.append(line)
            if STARTED in line:
                return

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[Worker, Worker]]:
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("BATCHERY_")},
        "BATCHERY_DATA_DIR": str(tmp_path),
        "BATCHERY_LOG_LEVEL": "info",
        "BATCHERY_RATE_LIMIT_ENABLED": "true",
        "BATCHERY_RATE_LIMIT": f"{4 * QUERY_COST}/hour",
        "BATCHERY_RATE_LIMIT_STORAGE": REDIS_URL,
        # This test's own keys: other tests and other runs sharing the Redis never interfere.
        "BATCHERY_RATE_LIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex}",
    }
    seed = [BATCHERY, "seed", "--bakeries", "2", "--orders-per-bakery", "1", "--suppliers", "1"]
    subprocess.run(seed, env=env, check=True, capture_output=True, timeout=120)
    started = [Worker(env), Worker(env)]
    try:
        for worker in started:
            worker.wait_started()
        yield started[0], started[1]
    finally:
        for worker in started:
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

        def ask(worker: Worker) -> httpx.Response:
            return client.post(worker.url, json={"query": QUERY})

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
