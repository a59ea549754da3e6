"""A job's files: the upload streamed to disk under a byte limit, result files cut back to a
checkpoint, failed records in the input's own format."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.bulk.importing import SourceRow
from app.bulk.jobs.files import FileTooLarge, JobFiles, RecordWriter, ResultFiles, store_input
from app.bulk.jobs.model import FileFormat
from app.bulk.model import RecordError


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_an_upload_is_streamed_to_the_input_file(tmp_path):
    files = JobFiles.of(tmp_path, "ab12", FileFormat.JSONL)
    size = await store_input(files, chunks(b'{"a": 1}\n', b'{"a": 2}\n'), max_bytes=18)
    assert size == 18
    assert files.input.read_bytes() == b'{"a": 1}\n{"a": 2}\n'
    assert sorted(p.name for p in files.directory.iterdir()) == ["input.jsonl"]


async def test_an_upload_past_the_limit_is_refused_and_nothing_is_kept(tmp_path):
    files = JobFiles.of(tmp_path, "ab12", FileFormat.CSV)
    consumed = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            consumed.append(1)
            yield b"x" * 10

    with pytest.raises(FileTooLarge) as refused:
        await store_input(files, endless(), max_bytes=25)
    assert refused.value.limit == 25
    # It stopped reading at the chunk that went past the limit.
    assert len(consumed) == 3
    assert list(files.directory.iterdir()) == []


def test_a_job_id_that_is_not_one_never_becomes_a_path(tmp_path):
    for bad in ("", "../etc", "a/b", "a.b"):
        with pytest.raises(ValueError):
            JobFiles.of(tmp_path, bad, FileFormat.CSV)


def test_result_files_are_cut_back_to_the_checkpoint_when_reopened(tmp_path):
    files = JobFiles.of(tmp_path, "cd34", FileFormat.CSV)
    files.directory.mkdir()
    records = RecordWriter(FileFormat.CSV, ["name", "region"])
    first = ResultFiles(files, records, 0, 0)
    first.open()
    row = SourceRow(3, None, "bad", {"name": "Rye, dark", "region": "MOON"})
    first.append(b"one\n", first.failed_head() + records.record(row), fsync=True)
    first.keep()
    kept = (first.results_size, first.failed_size)
    first.append(b"two, never committed\n", records.record(row), fsync=False)

    again = ResultFiles(files, records, *kept)
    again.open()
    assert files.results.read_bytes() == b"one\n"
    assert files.failed.read_text() == 'name,region\n"Rye, dark",MOON\n'

    missing = RecordError("NOT_PROCESSED", "not processed: the job was canceled")
    assert again.not_processed([row, row], missing, fsync=False) == 2
    assert files.unprocessed.read_text() == 'name,region\n"Rye, dark",MOON\n"Rye, dark",MOON\n'
    assert files.results.read_text().count("NOT_PROCESSED") == 2


def test_a_checkpoint_larger_than_its_file_is_an_error_not_a_silent_gap(tmp_path):
    files = JobFiles.of(tmp_path, "ef56", FileFormat.JSONL)
    files.directory.mkdir()
    files.results.write_bytes(b"short\n")
    with pytest.raises(OSError, match="shorter than its checkpoint"):
        ResultFiles(files, RecordWriter(FileFormat.JSONL, None), 100, 0).open()
