"""`batchery serve` as a child process a test can freeze, inspect and kill -9.

Start-up is awaited by reading uvicorn's "Uvicorn running on" from the child's stderr
(nothing polls or sleeps); `pause()` returns once the kernel reports the child stopped, so
whatever the test then observes (locks, open transactions) stays true until `resume()` or `kill()`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Self

BATCHERY = str(Path(sys.executable).parent / "batchery")
# Logged once the socket listens (after the lifespan's "Application startup complete.").
STARTED = "Uvicorn running on"
START_TIMEOUT_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class KillableServer:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHERY_")}
        self.env.update(env)
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None
        self.log: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    # What the child runs, and the line of its stderr that says it is ready.
    role = "serve"
    ready = STARTED

    def command(self) -> list[str]:
        return [BATCHERY, "serve", "--port", str(self.port)]

    def start(self) -> Self:
        self.process = subprocess.Popen(
            self.command(),
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        started = threading.Event()
        threading.Thread(target=self._drain, args=(started,), daemon=True).start()
        if not started.wait(START_TIMEOUT_SECONDS) or self.process.poll() is not None:
            self.kill()
            raise RuntimeError(f"batchery {self.role} did not start:\n" + "".join(self.log))
        return self

    def _drain(self, started: threading.Event) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)
            if self.ready in line:
                started.set()
        started.set()  # it exited: start() looks at why

    def pause(self) -> None:
        """SIGSTOP, and return once the child is stopped."""
        os.kill(self.pid, signal.SIGSTOP)
        _, status = os.waitpid(self.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), status

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # SIGKILL: no clean-up of any kind runs
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


# Printed by `batchery worker` once it takes jobs (app/cli_worker.py READY).
WORKER_READY = "worker: ready"


class KillableWorker(KillableServer):
    """`batchery worker` as a child process: started once it says it takes jobs."""

    role = "worker"
    ready = WORKER_READY

    def command(self) -> list[str]:
        return [BATCHERY, "worker"]
