"""The Redis server the rate-limit tests share (each test under a key prefix of its own)."""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlsplit

REDIS_URL = os.environ.get("BATCHERY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@functools.cache
def redis_available() -> bool:
    parts = urlsplit(REDIS_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1):
            available = True
    except OSError:
        available = False
    if not available and os.environ.get("CI"):
        raise RuntimeError(
            f"CI must test the shared rate-limit budget, but no Redis at {REDIS_URL}"
        )
    return available
