"""Load generators: wrk (the real one), a small Python fallback, and a streaming upload client.

Each returns a `LoadResult`: completed requests, elapsed seconds, latency percentiles, failures.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.scenarios import Request
from benchmarks.servers import pinned


@dataclass
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failures: int  # non-2xx answers, timeouts, socket errors

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


WRK_SCRIPT = """
wrk.method = "POST"
{headers}
local f = assert(io.open("{body}", "rb"))
wrk.body = f:read("*a")
f:close()

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "failures": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status + e.timeout + e.connect + e.read + e.write))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    url: str, request: Request, seconds: float, connections: int, workdir: Path, cpu: int | None
) -> LoadResult:
    body = workdir / "body.bin"
    body.write_bytes(request.body)
    headers = "\n".join(
        f'wrk.headers["{name}"] = "{value}"' for name, value in request.headers.items()
    )
    script = workdir / "script.lua"
    script.write_text(WRK_SCRIPT.format(headers=headers, body=body))
    command = pinned(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "30s",
            "-s",
            str(script),
            url,
        ],
        cpu,
    )
    completed = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    match = re.search(r"^BENCH (\{.*\})$", completed.stdout, re.M)
    if match is None:
        raise RuntimeError(f"wrk failed: {completed.stdout}\n{completed.stderr}")
    data = json.loads(match.group(1))
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        failures=data["failures"],
    )


def run_python(url: str, request: Request, seconds: float, connections: int) -> LoadResult:
    """What runs when wrk cannot be installed: closed-loop clients on httpx. It costs far more
    client CPU than wrk, so it finds lower ceilings; the ratios stay meaningful."""
    return asyncio.run(_python_load(url, request, seconds, connections))


async def _python_load(url: str, request: Request, seconds: float, connections: int) -> LoadResult:
    latencies: list[float] = []
    failures = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections)

    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal failures
            while time.monotonic() < deadline:
                start = time.perf_counter()
                try:
                    response = await client.post(url, content=request.body, headers=request.headers)
                    ok = response.status_code < 300
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - start)
                failures += not ok

        start = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.monotonic() - start
    latencies.sort()
    return LoadResult(
        len(latencies), elapsed, _percentile(latencies, 50), _percentile(latencies, 99), failures
    )


def _percentile(sorted_seconds: list[float], percent: float) -> float:
    if not sorted_seconds:
        return float("nan")
    index = min(len(sorted_seconds) - 1, round(percent / 100 * (len(sorted_seconds) - 1)))
    return sorted_seconds[index] * 1000


def send_streaming(host: str, port: int, path: str, request: Request) -> tuple[int, bytes, float]:
    """POST a (large) body chunk by chunk over a plain socket: (status, body, seconds)."""
    start = time.perf_counter()
    with socket.create_connection((host, port), timeout=300) as sock:
        head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
        head += [f"{name}: {value}" for name, value in request.headers.items()]
        head.append(f"Content-Length: {request.length}")
        received = bytearray()
        try:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            for chunk in request.stream():
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered (and closed) before the body was all sent: read why
        try:
            while data := sock.recv(65536):
                received += data
        except ConnectionResetError:
            pass
    elapsed = time.perf_counter() - start
    header, _, body = bytes(received).partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1]) if header.startswith(b"HTTP/") else 0
    if b"transfer-encoding: chunked" in header.lower():
        body = _unchunk(body)
    return status, body, elapsed


def _unchunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


class Background:
    """Sends one request again and again, one at a time, in a thread, until the block ends."""

    def __init__(self, url: str, request: Request) -> None:
        self.url = url
        self.request = request
        self.completed = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        with httpx.Client(timeout=300) as client:
            while not self.stopping.is_set():
                response = client.post(
                    self.url, content=self.request.body, headers=self.request.headers
                )
                self.completed += response.status_code == 200

    def __enter__(self) -> Background:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self.thread.join()
