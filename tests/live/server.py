"""A real uvicorn server on 127.0.0.1 and a free port, for clients that speak real HTTP.

The listening socket is bound and put in listen mode before the server starts, so a client can
connect at once: the kernel queues the connection until uvicorn accepts it, and nothing has to
poll or sleep waiting for start-up. The server runs in a thread with its own event loop, on an
SQLite database seeded for it. Used by the live tests and by `make audit` (`python -m
tests.live.server`).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import uvicorn

from app.db.engine import create_engine
from app.db.migrate import upgrade
from app.db.seed import SeedSize, seed
from app.main import create_app
from app.settings import Settings

LIVE_SEED = SeedSize(bakeries=6, orders_per_bakery=5, suppliers=4, seed=3)
STOP_TIMEOUT_SECONDS = 30


class LiveServer:
    def __init__(self, data_dir: Path, **setting_changes: Any) -> None:
        self.settings = Settings(data_dir=data_dir).replace(**setting_changes)
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
        # and without it every response waits ~40 ms for the client's delayed ACK.
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(128)
        self.port: int = self.socket.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.settings), log_level="warning", lifespan="on", loop="asyncio"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="live-uvicorn", daemon=True)
        self.failure: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(STOP_TIMEOUT_SECONDS)
        self.socket.close()
        if self.thread.is_alive():
            raise RuntimeError("the live server did not stop")
        if self.failure is not None:
            raise RuntimeError("the live server failed") from self.failure

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported by stop()
            self.failure = error

    async def _serve(self) -> None:
        engine = create_engine(self.settings.resolved_database_url)
        try:
            await upgrade(engine)
            await seed(engine, LIVE_SEED)
        finally:
            await engine.dispose()
        await self.server.serve(sockets=[self.socket])

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main() -> int:
    """Start a live server on a fresh database and run a command against its /graphql URL,
    given as the last argument: `python -m tests.live.server -- node tests/audit/audit.mjs`."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("command", nargs="+")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="batchery-live-") as data_dir,
        LiveServer(Path(data_dir)) as server,
    ):
        print(f"live server at {server.url}/graphql", file=sys.stderr)
        return subprocess.call([*args.command, f"{server.url}/graphql"])


if __name__ == "__main__":
    raise SystemExit(main())
