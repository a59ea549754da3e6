"""The upload spool: memory below the threshold, a temporary file above it, nothing after close."""

from __future__ import annotations

import os

from app.uploads import UploadSpool


async def read_all(upload) -> bytes:
    return b"".join([chunk async for chunk in upload.chunks(size=1000)])


async def test_small_files_stay_in_memory(tmp_path):
    spool = UploadSpool(tmp_path / "spool", memory_limit=100)
    writer = spool.new_file("0", "a.txt", "text/plain")
    await writer.write(b"x" * 60)
    await writer.write(b"y" * 40)
    upload = await writer.finish()
    assert upload.path is None and upload.size == 100
    assert await read_all(upload) == b"x" * 60 + b"y" * 40
    assert not (tmp_path / "spool").exists()
    spool.close()


async def test_larger_files_roll_over_to_disk_and_close_removes_them(tmp_path):
    spool = UploadSpool(tmp_path / "spool", memory_limit=100)
    content = os.urandom(5000)
    writer = spool.new_file("0", "a.bin", "application/octet-stream")
    for start in range(0, len(content), 70):
        await writer.write(content[start : start + 70])
    upload = await writer.finish()
    assert upload.path is not None and upload.path.is_file()
    assert upload.path.parent.parent == tmp_path / "spool"
    assert upload.size == len(content)
    # Every reader gets the whole file, however the others read.
    first, second = upload.open(), upload.open()
    assert first.read(10) == content[:10]
    assert second.read() == content
    assert first.read() == content[10:]
    first.close()
    second.close()
    assert await read_all(upload) == content
    spool.close()
    assert list((tmp_path / "spool").iterdir()) == []


async def test_close_also_removes_a_file_still_being_written(tmp_path):
    spool = UploadSpool(tmp_path / "spool", memory_limit=0)
    writer = spool.new_file("0", None, "application/octet-stream")
    await writer.write(b"partial")
    assert len(list((tmp_path / "spool").rglob("part-*"))) == 1
    spool.close()
    assert list((tmp_path / "spool").iterdir()) == []
