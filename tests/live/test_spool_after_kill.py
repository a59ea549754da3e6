"""Two `batchery serve` workers share one spool directory. One is killed with SIGKILL while an
upload is half received; when it starts again it removes that upload's files, and the other
worker's upload, half received at that moment too, survives and completes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.app.http.forms import BOUNDARY, body, field, file, upload_operation
from tests.images import png
from tests.live.killable import BATCHERY, KillableServer

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="flock semantics of Linux")

# Seen on disk within this long, or the test fails (a bound for a broken server, not a wait).
DEADLINE_SECONDS = 30


def upload_body(image: bytes) -> bytes:
    return body(
        field("operations", upload_operation("1")),
        field("map", {"0": ["variables.file"]}),
        file("0", image, "cake.png", "image/png"),
    )


def start_upload(port: int, content: bytes, first: int) -> socket.socket:
    """Sends the request's head and the first `first` bytes of its body, and no more."""
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"GraphQL-Preflight: 1\r\nContent-Length: {len(content)}\r\nConnection: close\r\n\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_SECONDS)
    sock.sendall(head.encode() + content[:first])
    return sock


def request_directories(spool: Path) -> set[Path]:
    if not spool.exists():
        return set()
    return {p for p in spool.glob("request-*") if p.is_dir()}


def new_directory_with_a_part(spool: Path, known: set[Path]) -> Path:
    """The request directory that appears (with its first bytes on disk) once a server has read
    the start of a file part. Watched, not slept on: the loop gives the CPU away each turn."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        for directory in request_directories(spool) - known:
            if any(directory.glob("part-*")):
                return directory
        os.sched_yield()
    raise AssertionError(f"no request directory appeared in {spool}")


def test_a_killed_workers_spool_is_swept_at_its_restart_and_a_live_one_is_not(tmp_path):
    data = tmp_path / "data"
    env = {"BATCHERY_DATA_DIR": str(data), "BATCHERY_UPLOAD_SPOOL_BYTES": "0"}
    seed = [BATCHERY, "seed", "--bakeries", "2", "--orders-per-bakery", "1"]
    subprocess.run(seed, env={**os.environ, **env}, check=True, capture_output=True, timeout=60)
    spool = data / "uploads"
    image = png(os.urandom(64 * 1024))
    content = upload_body(image)
    halfway = content.index(b"\x89PNG") + len(image) // 2

    doomed = KillableServer(env).start()
    other = KillableServer(env).start()
    sockets: list[socket.socket] = []
    try:
        sockets.append(start_upload(doomed.port, content, halfway))
        doomed_dir = new_directory_with_a_part(spool, set())
        live = start_upload(other.port, content, halfway)
        sockets.append(live)
        live_dir = new_directory_with_a_part(spool, {doomed_dir})

        doomed.kill()
        assert doomed_dir.is_dir()  # nothing of the killed request cleaned up

        restarted = KillableServer(env).start()  # its start-up sweeps
        try:
            assert not doomed_dir.exists()
            assert not doomed_dir.with_name(doomed_dir.name + ".lock").exists()
            assert live_dir.is_dir() and any(live_dir.glob("part-*"))

            # The other worker's upload goes on as if nothing happened.
            live.sendall(content[halfway:])
            answer = b""
            while chunk := live.recv(65536):
                answer += chunk
            status, _, payload = answer.partition(b"\r\n\r\n")
            assert status.startswith(b"HTTP/1.1 200"), answer[:500]
            photo = json.loads(payload)["data"]["uploadOrderPhoto"]
            assert photo["size"] == len(image)
            assert request_directories(spool) == set()
            assert sorted(p.name for p in spool.iterdir()) == []
        finally:
            restarted.stop()
    finally:
        for sock in sockets:
            sock.close()
        doomed.kill()
        other.stop()
