"""Spool directories of requests whose process died are swept when a worker starts; those of live
requests, in this process or another worker sharing the directory, are not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.main import create_app
from app.settings import Settings
from app.uploads import UploadSpool, sweep

# A request in another process: a spool with a file on disk, held open until stdin closes.
HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from app.uploads import UploadSpool

    async def main():
        spool = UploadSpool(Path(sys.argv[1]), memory_limit=0)
        writer = spool.new_file("0", "cake.png", "image/png")
        await writer.write(b"half a cake")
        print(spool.directory, flush=True)
        sys.stdin.read()
        spool.close()

    asyncio.run(main())
    """
)


@contextmanager
def request_in_another_process(root: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        directory = Path(holder.stdout.readline().strip())  # printed once the file is on disk
        assert directory.is_dir() and any(directory.iterdir())
        yield holder, directory
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=30)


def kill(holder: subprocess.Popen[str]) -> None:
    holder.send_signal(signal.SIGKILL)
    assert holder.wait(timeout=30) == -signal.SIGKILL


async def test_a_live_request_in_this_process_survives_a_sweep(tmp_path):
    spool = UploadSpool(tmp_path, memory_limit=0)
    writer = spool.new_file("0", "cake.png", "image/png")
    await writer.write(b"bytes")
    assert spool.directory is not None

    assert sweep(tmp_path) == []

    assert spool.directory.is_dir()
    await writer.finish()
    spool.close()
    assert list(tmp_path.iterdir()) == []  # directory and lock file both gone


def test_a_live_request_in_another_worker_survives_and_a_killed_one_is_swept(tmp_path):
    with (
        request_in_another_process(tmp_path) as (live, live_dir),
        request_in_another_process(tmp_path) as (killed, killed_dir),
    ):
        kill(killed)
        assert killed_dir.is_dir()  # nothing of the killed request ran its clean-up

        assert sweep(tmp_path) == [killed_dir]

        assert not killed_dir.exists()
        assert not killed_dir.with_name(killed_dir.name + ".lock").exists()
        assert live_dir.is_dir() and any(live_dir.iterdir())
        # The live request ends normally and cleans up after itself.
        assert live.stdin is not None
        live.stdin.close()
        assert live.wait(timeout=30) == 0
    assert list(tmp_path.iterdir()) == []


def test_a_directory_from_before_lock_files_is_swept(tmp_path):
    old = tmp_path / "request-abcd1234"
    old.mkdir()
    (old / "part-xyz").write_bytes(b"left by kill -9")
    assert sweep(tmp_path) == [old]
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_of_a_missing_or_empty_root_does_nothing(tmp_path):
    assert sweep(tmp_path / "absent") == []
    assert sweep(tmp_path) == []
    (tmp_path / "unrelated.txt").write_text("not ours")
    assert sweep(tmp_path) == []
    assert (tmp_path / "unrelated.txt").exists()


async def test_a_worker_sweeps_when_it_starts(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    root = settings.resolved_upload_spool_dir
    with request_in_another_process(root) as (killed, killed_dir):
        kill(killed)
    with request_in_another_process(root) as (live, live_dir):
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            assert not killed_dir.exists()
            assert live_dir.is_dir()
        assert live.stdin is not None
        live.stdin.close()
        assert live.wait(timeout=30) == 0
    assert os.listdir(root) == []
