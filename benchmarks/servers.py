"""The three servers under test: started on loopback, one uvicorn worker each, pinned to a core,
and observed from outside (CPU time and memory from /proc, SQL statements from their endpoints).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(command: list[str], cpu: int | None) -> list[str]:
    if cpu is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", str(cpu), *command]


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    statements_kind: str  # "metrics" (Batchery's Prometheus text) or "stats" (the bench JSON)
    log: Path
    process: subprocess.Popen[bytes] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.log}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer /healthz in {timeout:.0f}s; see {self.log}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process, all its threads included."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def memory(self) -> tuple[int, int]:
        """(resident set size, its peak since the last reset), in bytes."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        rss = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]
        peak = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]
        return rss, peak

    def reset_peak_memory(self) -> bool:
        """Make VmHWM start from the current RSS (Linux: writing 5 to clear_refs)."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def wait_idle(self, timeout: float = 60.0) -> float:
        """Wait until the server stops burning CPU (it may still work through requests queued
        by a load generator that has gone); returns the seconds it was still busy, to the
        nearest poll (0.05 s)."""
        start = time.monotonic()
        busy_until = start
        last = self.cpu_seconds()
        quiet = 0
        while time.monotonic() - start < timeout:
            time.sleep(0.05)
            now = self.cpu_seconds()
            if now - last <= 0.01:  # one clock tick at most
                quiet += 1
            else:
                quiet = 0
                busy_until = time.monotonic()
            last = now
            if quiet >= 6:
                break
        return busy_until - start

    def statements(self) -> float:
        """SQL statements the server has run so far."""
        if self.statements_kind == "metrics":
            text = httpx.get(self.url + "/metrics", timeout=10).text
            match = re.search(r"^batchery_db_statements_total (\S+)$", text, re.M)
            return float(match.group(1)) if match else float("nan")
        return float(httpx.get(self.url + "/bench/stats", timeout=10).json()["statements"])

    def handled(self, ops_per_request: int = 1) -> float:
        """Requests the server has finished so far, those whose client had gone included (see
        `benchmarks.common.CountRequests`). Batchery's are its operations answered without
        errors, from `/metrics`: one it cancelled because the client went does not count, so
        the CPU it spent on it is charged to the others."""
        if self.statements_kind == "metrics":
            text = httpx.get(self.url + "/metrics", timeout=10).text
            ok = re.findall(
                r'^batchery_graphql_operations_total\{[^}]*outcome="ok"[^}]*\} (\S+)$', text, re.M
            )
            return sum(float(value) for value in ok) / ops_per_request
        return float(httpx.get(self.url + "/bench/stats", timeout=10).json()["requests"])


def make_servers(
    data_dir: Path, logs: Path, cpu: int | None, database_url: str = ""
) -> dict[str, Server]:
    python = sys.executable
    common = {
        "BATCHERY_DATA_DIR": str(data_dir),
        "BATCHERY_DATABASE_URL": database_url,  # "": the SQLite file in the data directory
        "BATCHERY_LOG_LEVEL": "warning",
        # The 100 MiB upload scenario is over the contract's default limits on purpose.
        "BATCHERY_MAX_FILE_BYTES": str(128 * 1024 * 1024),
        "BATCHERY_MAX_BODY_BYTES": str(128 * 1024 * 1024),
    }
    uvicorn = [python, "-m", "uvicorn", "--host", "127.0.0.1", "--log-level", "warning"]
    servers = {}
    port = free_port()
    servers["batchery"] = Server(
        "batchery",
        pinned([python, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)], cpu),
        common,
        port,
        "metrics",
        logs / "batchery.log",
    )
    for name in ("baseline", "floor"):
        port = free_port()
        servers[name] = Server(
            name,
            pinned(
                [*uvicorn, "--no-access-log", "--port", str(port), f"benchmarks.{name}.app:app"],
                cpu,
            ),
            common,
            port,
            "stats",
            logs / f"{name}.log",
        )
    return servers
