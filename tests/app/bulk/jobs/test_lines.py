"""`BoundedLines`: a file's lines, none longer than the limit ever read whole; a longer one is
skipped in pieces and reported by its number, and reading goes on at the next line."""

from __future__ import annotations

import io
from typing import BinaryIO

import pytest

from app.bulk.jobs.lines import BoundedLines, LineTooLong

LIMIT = 64 * 1024


class Spy(io.BufferedReader):
    """The file, remembering the most bytes one read handed out."""

    largest = 0

    def readline(self, size: int | None = -1, /) -> bytes:
        piece = super().readline(size)
        self.largest = max(self.largest, len(piece))
        return piece

    def read(self, size: int | None = -1, /) -> bytes:
        piece = super().read(size)
        self.largest = max(self.largest, len(piece))
        return piece


def spy(path) -> Spy:
    return Spy(io.FileIO(path, "rb"))


def read_all(lines: BoundedLines) -> list[tuple[int, str | int]]:
    """(line number, text) per line, (line number, -1) for one too long."""
    seen: list[tuple[int, str | int]] = []
    while True:
        try:
            text = next(lines)
        except StopIteration:
            return seen
        except LineTooLong as long:
            assert long.line == lines.number
            seen.append((long.line, -1))
            continue
        seen.append((lines.number, text))


def test_a_huge_line_is_skipped_in_pieces_and_reported_by_number(tmp_path):
    path = tmp_path / "in.jsonl"
    with path.open("wb") as out:
        out.write(b'{"a": 1}\n')
        out.write(b"x" * (20 * 1024 * 1024))  # 20 MiB, one line
        out.write(b'\n{"a": 3}\r\n\n{"a": 5}')
    handle: BinaryIO
    with spy(path) as handle:
        lines = BoundedLines(handle, LIMIT)
        seen = read_all(lines)
        # Never more than the limit (and the byte telling the line is longer) read at once.
        assert handle.largest <= LIMIT + 1
    assert seen == [(1, '{"a": 1}\n'), (2, -1), (3, '{"a": 3}\r\n'), (4, "\n"), (5, '{"a": 5}')]


def test_a_line_of_exactly_the_limit_is_kept_and_one_byte_more_is_not(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"a" * LIMIT + b"\n" + b"b" * (LIMIT + 1) + b"\n" + b"c" * (LIMIT + 1))
    with path.open("rb") as handle:
        seen = read_all(BoundedLines(handle, LIMIT))
    assert [(n, t if t == -1 else len(t)) for n, t in seen] == [(1, LIMIT + 1), (2, -1), (3, -1)]


def test_the_message_names_the_limit_and_its_setting(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"y" * 100)
    with path.open("rb") as handle, pytest.raises(LineTooLong) as long:
        next(BoundedLines(handle, 10))
    assert "longer than 10 bytes" in str(long.value)
    assert "BATCHERY_JOBS_MAX_LINE_BYTES" in str(long.value)


def test_a_byte_order_mark_is_not_part_of_the_first_line(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"\xef\xbb\xbfname\nRye\n")
    with path.open("rb") as handle:
        assert list(BoundedLines(handle, LIMIT)) == ["name\n", "Rye\n"]
