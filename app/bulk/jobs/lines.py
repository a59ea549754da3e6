"""A file's lines in bounded memory: no line longer than a limit is ever read whole.

A JSON Lines file (or a CSV) may hold one enormous line, a 200 MB object, a cell, or no newline
at all; reading it as lines would hold it all. `BoundedLines` reads at most `limit` + 1 bytes of
a line at once; a longer line is read on in pieces and thrown away to its end, and
`LineTooLong` (naming the line and the limit) is raised in its place: the caller reports it as a
bad record and goes on with the next line. For CSV (`csv=True`) the limit is on a record, which
may span lines inside quotes: the bytes since `start_record()` are counted, and a record that
outgrows the limit is thrown away up to where its quotes close (an even count of `"` at a line's
end, RFC 4180's rule), so the next record is read from its own start.
"""

from __future__ import annotations

from typing import BinaryIO

# The one place a record's size limit is set (bulk jobs read it from their config; `batchery
# import` keeps this default).
DEFAULT_MAX_LINE_BYTES = 1024 * 1024
SETTING = "BATCHERY_JOBS_MAX_LINE_BYTES"
BOM = b"\xef\xbb\xbf"
# What a line being thrown away is read in.
PIECE_BYTES = 64 * 1024


class LineTooLong(ValueError):
    """Line `line` (or the record it ends) is longer than the limit: it was skipped unread."""

    def __init__(self, line: int, limit: int) -> None:
        super().__init__(
            f"the record is longer than {limit} bytes, the most one record may hold "
            f"({SETTING}): it was skipped unread"
        )
        self.line = line
        self.limit = limit


class BoundedLines:
    """The lines of a binary file, decoded from UTF-8 with their line endings (a leading byte
    order mark dropped); `number` is the line last read (skipped ones included). An iterator
    that survives `LineTooLong`: the next call goes on after the skipped line."""

    def __init__(self, handle: BinaryIO, limit: int, *, csv: bool = False) -> None:
        self.handle = handle
        self.limit = limit
        self.csv = csv
        self.number = 0
        self._record_bytes = 0
        self._quotes = 0

    def __iter__(self) -> BoundedLines:
        return self

    def start_record(self) -> None:
        """A CSV record starts with the next line (the reader returned the previous one)."""
        self._record_bytes = 0
        self._quotes = 0

    def __next__(self) -> str:
        raw = self.handle.readline(self.limit + 1)
        if not raw:
            raise StopIteration
        self.number += 1
        if self.number == 1 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        if not self.csv:
            self.start_record()  # a JSON Lines record is one line
        self._record_bytes += len(raw)
        if self.csv:
            self._quotes += raw.count(b'"')
        whole = raw.endswith(b"\n") or len(raw) <= self.limit
        if whole and self._record_bytes <= self.limit + 1:
            return raw.decode("utf-8")
        at = self.number
        if not raw.endswith(b"\n"):
            self._skip_line()
        if self.csv:
            while self._quotes % 2 and self._skip_line(next_line=True):
                pass
        self.start_record()
        raise LineTooLong(at, self.limit)

    def _skip_line(self, *, next_line: bool = False) -> bool:
        """Read to the end of this line (or all of the next), in pieces; False at the end."""
        read = False
        while piece := self.handle.readline(PIECE_BYTES):
            if next_line and not read:
                self.number += 1
            read = True
            if self.csv:
                self._quotes += piece.count(b'"')
            if piece.endswith(b"\n"):
                return True
        return False
