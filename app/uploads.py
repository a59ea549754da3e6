"""Uploaded files as the application sees them, and the spool that receives them.

A transport writes each file part into an `UploadSpool` as its bytes arrive: small files stay in
memory, larger ones roll over to a temporary file in a directory of the request's own. Resolvers get
an `UploadedFile`, which any number of readers can open, each reading the whole file. `close()`
removes everything the spool wrote, whatever happened to the request.

A process killed mid-request (SIGKILL, OOM) runs no `close()`. So each request directory has a
lock file beside it (`request-XXXX.lock`), created and `flock`ed before the directory exists and
removed after it: the kernel releases the lock when its process dies, whatever the cause.
`sweep()`, run when a worker starts, removes the directories whose lock it can take, and never
one whose request is alive in another worker sharing the spool directory.

Nothing here knows about HTTP or GraphQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

READ_CHUNK_BYTES = 256 * 1024
PREFIX = "request-"
LOCK_SUFFIX = ".lock"


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """One received file: its metadata, and its bytes in memory (small) or on disk (large)."""

    field_name: str
    filename: str | None
    content_type: str
    size: int
    path: Path | None = None
    data: bytes | None = None

    def open(self) -> BinaryIO:
        """A new binary reader positioned at the start: readers never disturb one another.

        Blocking when the file is on disk: call it from a thread in async code (or use `chunks`).
        """
        if self.path is not None:
            return self.path.open("rb")
        return io.BytesIO(self.data or b"")

    async def chunks(self, size: int = READ_CHUNK_BYTES) -> AsyncIterator[bytes]:
        """The bytes, chunk by chunk, read off the event loop's thread."""
        reader = await asyncio.to_thread(self.open)
        try:
            while chunk := await asyncio.to_thread(reader.read, size):
                yield chunk
        finally:
            reader.close()


class UploadSpool:
    """The files received by one request. The directory is made on first need and removed by
    `close()`, with everything in it."""

    def __init__(self, root: Path, memory_limit: int) -> None:
        self.root = root
        self.memory_limit = memory_limit
        self.directory: Path | None = None
        self._lock: int | None = None  # the descriptor holding the directory's flock
        self._writers: list[SpoolWriter] = []

    def new_file(self, field_name: str, filename: str | None, content_type: str) -> SpoolWriter:
        writer = SpoolWriter(self, field_name, filename, content_type)
        self._writers.append(writer)
        return writer

    def _new_file(self) -> tuple[Path, BinaryIO]:
        if self.directory is None:
            self.directory, self._lock = _claim_directory(self.root)
        fd, name = tempfile.mkstemp(prefix="part-", dir=self.directory)
        return Path(name), os.fdopen(fd, "wb")

    def close(self) -> None:
        """Close every file and remove the request's directory. Synchronous on purpose: it must
        also run while the request's task is being cancelled."""
        for writer in self._writers:
            writer.discard()
        self._writers.clear()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            # The lock goes last: a directory without its lock file is never a live request's.
            with contextlib.suppress(FileNotFoundError):
                _lock_path(self.directory).unlink()
            self.directory = None
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


class SpoolWriter:
    """Receives one file's bytes: in memory up to the spool's limit, then on disk."""

    def __init__(
        self, spool: UploadSpool, field_name: str, filename: str | None, content_type: str
    ) -> None:
        self.spool = spool
        self.field_name = field_name
        self.filename = filename
        self.content_type = content_type
        self.size = 0
        self._buffer: bytearray | None = bytearray()
        self._path: Path | None = None
        self._file: BinaryIO | None = None

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self._buffer is not None:
            if len(self._buffer) + len(data) <= self.spool.memory_limit:
                self._buffer += data
                return
            data = bytes(self._buffer) + data
            self._buffer = None
            # Made on the loop's thread (a few fast syscalls) so `close()` can never miss it.
            self._path, self._file = self.spool._new_file()
        assert self._file is not None
        await asyncio.to_thread(self._file.write, data)

    async def finish(self) -> UploadedFile:
        if self._file is not None:
            await asyncio.to_thread(self._file.close)
            self._file = None
        return UploadedFile(
            field_name=self.field_name,
            filename=self.filename,
            content_type=self.content_type,
            size=self.size,
            path=self._path,
            data=bytes(self._buffer) if self._buffer is not None else None,
        )

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._buffer = None


def sweep(root: Path) -> list[Path]:
    """Remove the request directories left by processes that died mid-request; returns them.
    Safe while other workers serve uploads from the same root: a live request holds its lock."""
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for lock in sorted(root.glob(f"{PREFIX}*{LOCK_SUFFIX}")):
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:  # its request just ended
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # alive
                continue
            if not _is_file_at(fd, lock):  # ended and replaced meanwhile
                continue
            directory = lock.with_name(lock.name.removesuffix(LOCK_SUFFIX))
            shutil.rmtree(directory, ignore_errors=True)
            lock.unlink()
            removed.append(directory)
        finally:
            os.close(fd)
    for directory in sorted(root.glob(f"{PREFIX}*")):
        # Made before request directories had lock files: nobody can be using it now.
        if directory.is_dir() and not _lock_path(directory).exists():
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
    return removed


def _claim_directory(root: Path) -> tuple[Path, int]:
    """A new request directory and the descriptor holding its lock. The lock file comes first,
    so that a sweep never sees the directory without a lock."""
    root.mkdir(parents=True, exist_ok=True)
    while True:
        fd, name = tempfile.mkstemp(prefix=PREFIX, suffix=LOCK_SUFFIX, dir=root)
        lock = Path(name)
        # Blocking, and short: only a sweep that opened the file in the instant before can hold
        # it, and it lets go at once when it sees the file is not a dead request's.
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _is_file_at(fd, lock):
            directory = lock.with_name(lock.name.removesuffix(LOCK_SUFFIX))
            try:
                directory.mkdir()
            except FileExistsError:  # an old lock-less directory of that name
                lock.unlink()
            else:
                return directory, fd
        os.close(fd)  # a sweep took the name in the instant before the lock: pick another


def _lock_path(directory: Path) -> Path:
    return directory.with_name(directory.name + LOCK_SUFFIX)


def _is_file_at(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False
