"""`batchery serve` in a process of its own, for what only a real process shows: signals, a
client's connection closing, the worker's event loop and memory under a heavy query.

The port is taken from a socket bound and closed just before (a tiny race, acceptable in tests);
start-up is awaited by polling `/healthz` in a bounded loop.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

BATCHERY = str(Path(sys.executable).with_name("batchery"))
START_SECONDS = 60
POLL_SECONDS = 0.02


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class ServerProcess:
    def __init__(self, data_dir: Path, **settings: str) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "BATCHERY_DATA_DIR": str(data_dir),
            "BATCHERY_LOG_LEVEL": "warning",
            **{f"BATCHERY_{name.upper()}": value for name, value in settings.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def seed(self, *args: str) -> None:
        subprocess.run([BATCHERY, "seed", "--reset", *args], env=self.env, check=True)

    def start(self) -> ServerProcess:
        self.process = subprocess.Popen([BATCHERY, "serve", "--port", str(self.port)], env=self.env)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"batchery serve exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(POLL_SECONDS)  # polling for start-up, not synchronising on an event
        raise RuntimeError("batchery serve did not answer /healthz in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def metric(self, name: str, **labels: str) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
        pattern = (
            rf"^{re.escape(name)}{{{re.escape(wanted)}}} (\S+)$" if labels else rf"^{name} (\S+)$"
        )
        match = re.search(pattern, text, re.M)
        return float(match.group(1)) if match else 0.0

    def peak_rss_bytes(self) -> int:
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
        assert match
        return int(match.group(1)) * 1024


@contextmanager
def server_process(data_dir: Path, **settings: str) -> Iterator[ServerProcess]:
    server = ServerProcess(data_dir, **settings)
    try:
        yield server
    finally:
        server.stop()


def plain_dsn(sqlalchemy_url: str) -> str:
    """The asyncpg DSN of a SQLAlchemy `postgresql+asyncpg://` URL."""
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


@asynccontextmanager
async def postgres_role(admin_url: str) -> AsyncIterator[tuple[str, str]]:
    """A role of its own on the test PostgreSQL server, owning a schema of the same name that is
    its search path (a server process cannot be given a search path any other way): its URL and
    name. Both are dropped afterwards. (A database of its own would be simpler, but dropping a
    database waits for a checkpoint: minutes on a busy shared server.)"""
    name = f"batchery_live_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(plain_dsn(admin_url))
    try:
        await admin.execute(f"CREATE ROLE {name} LOGIN")
        await admin.execute(f"CREATE SCHEMA {name} AUTHORIZATION {name}")
        await admin.execute(f"ALTER ROLE {name} SET search_path = {name}")
        try:
            yield make_url(admin_url).set(username=name).render_as_string(False), name
        finally:
            await admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
            await admin.execute(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{name}'"
            )
            await admin.execute(f"DROP ROLE IF EXISTS {name}")
    finally:
        await admin.close()
