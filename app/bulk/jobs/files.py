"""A job's files, in a directory of its own: `<jobs_dir>/<job id>/`.

- `input.<fmt>`: the records as submitted, streamed to disk in chunks under a byte limit (never
  the whole upload in memory), written to a temporary name and renamed once complete.
- `results.jsonl`: one line per record, in the input's order:
  `{"line": 12, "id": 345, "success": false, "errors": [{"code", "message", "field"}]}`.
- `failed.<fmt>`: only the records whose result is a failure, as the input had them (a CSV with
  its header), so a client can fix them and submit the file again.
- `unprocessed.<fmt>`: the records never attempted (the job was canceled or failed), likewise.

The result files grow chunk by chunk. `ResultFiles` knows the sizes they had at the job's last
checkpoint and cuts them back to those sizes when a job resumes, or when a chunk is rolled back:
what lies past the checkpoint belongs to a chunk whose transaction never committed.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from app.bulk.importing import SourceRow
from app.bulk.jobs.model import FileFormat
from app.bulk.model import RecordError


class FileTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is larger than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class JobFiles:
    directory: Path
    file_format: FileFormat

    @classmethod
    def of(cls, jobs_dir: Path, job_id: str, file_format: FileFormat) -> JobFiles:
        # Job ids are hex (app.db.jobs.new_job_id); anything else must not become a path.
        if not job_id or not job_id.isalnum():
            raise ValueError(f"not a job id: {job_id!r}")
        return cls(jobs_dir / job_id, file_format)

    @property
    def input(self) -> Path:
        return self.directory / f"input.{self.file_format.value}"

    @property
    def results(self) -> Path:
        return self.directory / "results.jsonl"

    @property
    def failed(self) -> Path:
        return self.directory / f"failed.{self.file_format.value}"

    @property
    def unprocessed(self) -> Path:
        return self.directory / f"unprocessed.{self.file_format.value}"

    def remove(self) -> None:
        """Every file of the job (its retention ran out, or the submission was refused)."""
        shutil.rmtree(self.directory, ignore_errors=True)


async def store_input(files: JobFiles, source: AsyncIterable[bytes], max_bytes: int) -> int:
    """Stream `source` to `files.input`; its size. FileTooLarge, and nothing kept, past
    `max_bytes` (the upload is not read further)."""
    await asyncio.to_thread(files.directory.mkdir, parents=True, exist_ok=True)
    partial = files.input.with_name(files.input.name + ".part")
    handle = await asyncio.to_thread(partial.open, "wb")
    size = 0
    try:
        async for chunk in source:
            size += len(chunk)
            if size > max_bytes:
                raise FileTooLarge(max_bytes)
            await asyncio.to_thread(handle.write, chunk)
        await asyncio.to_thread(handle.close)
        await asyncio.to_thread(partial.replace, files.input)
    except BaseException:
        await asyncio.to_thread(_discard, handle, partial)
        raise
    return size


def _discard(handle: BinaryIO, path: Path) -> None:
    handle.close()
    path.unlink(missing_ok=True)


def result_line(line: int, record_id: int | None, errors: Iterable[RecordError]) -> bytes:
    shown = [{"code": e.code, "message": e.message, "field": _field(e.field)} for e in errors]
    entry = {"line": line, "id": record_id, "success": not shown, "errors": shown}
    return orjson.dumps(entry) + b"\n"


def _field(name: str | None) -> str | None:
    # The engine names a record's fields "data.<name>"; in a file they are plain columns/keys.
    return name.removeprefix("data.") if name is not None else None


class RecordWriter:
    """Records in the input's format: JSON Lines as they were read, CSV rows under the header."""

    def __init__(self, file_format: FileFormat, header: list[str] | None) -> None:
        self.file_format = file_format
        self.header = header or []

    def head(self) -> bytes:
        """What starts a new file (the CSV header)."""
        return self.rows([self.header]) if self.file_format is FileFormat.CSV else b""

    def record(self, row: SourceRow) -> bytes:
        if row.raw is None and row.text is None:
            # A record too long to have been kept (sources.py): results.jsonl names its line.
            return b""
        if self.file_format is FileFormat.JSONL:
            text = row.text if row.text is not None else orjson.dumps(row.raw).decode()
            return text.encode() + b"\n"
        raw: Any = row.raw
        cells = [raw.get(name, "") for name in self.header] if isinstance(raw, dict) else raw
        return self.rows([cells])

    @staticmethod
    def rows(rows: Iterable[list[str]]) -> bytes:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        return out.getvalue().encode()


class ResultFiles:
    """results.jsonl and failed.<fmt>, appended to, cut back to their last kept sizes."""

    def __init__(self, files: JobFiles, records: RecordWriter, results: int, failed: int) -> None:
        self.files = files
        self.records = records
        # Sizes at the last checkpoint (kept), and after what was appended since (pending).
        self.results_size = self.pending_results = results
        self.failed_size = self.pending_failed = failed

    def open(self) -> None:
        """Cut both files back to the checkpoint's sizes (a resumed job) or create them."""
        _truncate(self.files.results, self.results_size)
        _truncate(self.files.failed, self.failed_size)

    def failed_head(self) -> bytes:
        return self.records.head() if self.pending_failed == 0 else b""

    def append(self, results: bytes, failed: bytes, *, fsync: bool) -> None:
        """Write after the pending sizes; flushed (and fsynced) before the caller commits."""
        for path, data, at in (
            (self.files.results, results, self.pending_results),
            (self.files.failed, failed, self.pending_failed),
        ):
            if data:
                _write_at(path, at, data, fsync=fsync)
        self.pending_results += len(results)
        self.pending_failed += len(failed)

    def not_processed(self, rows: Iterable[SourceRow], error: RecordError, *, fsync: bool) -> int:
        """Report each of `rows` with `error` in results.jsonl (after the pending size) and copy
        them to unprocessed.<fmt>, reading them once; how many there were."""
        count = 0
        with (
            self.files.results.open("r+b") as results,
            self.files.unprocessed.open("wb") as unprocessed,
        ):
            results.seek(self.pending_results)
            unprocessed.write(self.records.head())
            for row in rows:
                results.write(result_line(row.line, None, (error,)))
                unprocessed.write(self.records.record(row))
                count += 1
            results.truncate()
            for handle in (results, unprocessed):
                handle.flush()
                if fsync:
                    os.fsync(handle.fileno())
            self.pending_results = results.tell()
        return count

    def keep(self) -> None:
        """The transaction that recorded the pending sizes committed."""
        self.results_size, self.failed_size = self.pending_results, self.pending_failed

    def rollback(self) -> None:
        """It did not: forget what was appended since the last checkpoint."""
        self.pending_results, self.pending_failed = self.results_size, self.failed_size
        self.open()


def _truncate(path: Path, size: int) -> None:
    if not path.exists():
        if size:
            raise FileNotFoundError(f"{path} is gone, but its checkpoint says {size} bytes")
        path.touch()
        return
    if path.stat().st_size < size:
        raise OSError(f"{path} is shorter than its checkpoint ({size} bytes): it was changed")
    os.truncate(path, size)


def _write_at(path: Path, at: int, data: bytes, *, fsync: bool) -> None:
    with path.open("r+b") as handle:
        handle.seek(at)
        handle.write(data)
        handle.truncate()
        handle.flush()
        if fsync:
            os.fsync(handle.fileno())
