"""Reading records from CSV and JSON Lines files: what `batchery import` and bulk jobs both read.

CSV: a header row of field names (e.g. bakeryId,writtenPhrase,currentTotal,status,externalId),
then one record per row; an empty cell leaves the field out; a blank row is skipped. JSON Lines:
one JSON object of fields per line; blank lines are skipped. Line numbers are the file's own (a
CSV record spanning several lines is numbered by its first line).

Records are read one at a time from the file, never all at once, and never a line longer than
`max_line_bytes` whole (app/bulk/jobs/lines.py): such a record is an unreadable one, skipped in
bounded memory. Every record the file holds is yielded, the unreadable ones too (with `problem`
set), so counting and skipping records give the same numbers whoever reads the file: the bulk
jobs' checkpoints count records this way.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import orjson

from app.bulk.entities import Entity, Kind, ascii_int
from app.bulk.importing import SourceRow
from app.bulk.jobs.lines import DEFAULT_MAX_LINE_BYTES, BoundedLines, LineTooLong

# The file formats by name ("csv", "jsonl"), as `FileFormat.value` spells them.
CSV, JSONL = "csv", "jsonl"
FORMATS = {".csv": CSV, ".jsonl": JSONL, ".ndjson": JSONL}


class SourceError(ValueError):
    """The file as a whole cannot be read (missing, unknown format, bad header)."""


def format_of(path: Path, chosen: str | None = None) -> str:
    """`chosen`, or the format the file's name says; SourceError when neither tells."""
    found = chosen or FORMATS.get(path.suffix.lower())
    if found is None:
        raise SourceError(
            f"cannot tell the format of {path.name}: name it .csv or .jsonl, or pass --format"
        )
    return found


def read_rows(
    path: Path,
    file_format: str,
    entity: Entity,
    *,
    skip: int = 0,
    extra_columns: Collection[str] = (),
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[SourceRow]:
    """The file's records from the `skip`-th on. `extra_columns`: CSV header names accepted on
    top of the entity's fields (a job's `id` column). A record longer than `max_line_bytes` is
    an unreadable one, never held whole."""
    if not path.is_file():
        raise SourceError(f"no such file: {path}")
    rows = (
        csv_rows(path, entity, extra_columns, max_line_bytes)
        if file_format == CSV
        else jsonl_rows(path, max_line_bytes)
    )
    return itertools.islice(rows, skip, None) if skip else rows


def count_rows(
    path: Path,
    file_format: str,
    entity: Entity,
    *,
    extra_columns: Collection[str] = (),
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> int:
    """How many records the file holds (unreadable ones included); SourceError on a bad header."""
    rows = read_rows(
        path, file_format, entity, extra_columns=extra_columns, max_line_bytes=max_line_bytes
    )
    return sum(1 for _ in rows)


def csv_header(path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> list[str]:
    """The CSV file's header row ([] for an empty file)."""
    with path.open("rb") as handle:
        return _header(csv.reader(BoundedLines(handle, max_line_bytes, csv=True)), path)


def _header(reader: Iterator[list[str]], path: Path) -> list[str]:
    try:
        return next(reader, [])
    except LineTooLong as long:
        raise SourceError(f"{path.name}: the header row: {long}") from None
    except csv.Error as error:
        raise SourceError(f"{path.name}: the header row is not valid CSV: {error}") from None


def csv_rows(
    path: Path,
    entity: Entity,
    extra_columns: Collection[str] = (),
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[SourceRow]:
    # The csv module's own cap on a cell (128 KiB by default) must not refuse what our limit on
    # a whole record lets through; the cap is the module's, process-wide, and only ever raised.
    if csv.field_size_limit() < max_line_bytes:
        csv.field_size_limit(max_line_bytes)
    with path.open("rb") as handle:
        lines = BoundedLines(handle, max_line_bytes, csv=True)
        reader = csv.reader(lines)
        header = _header(reader, path)
        if not header:
            return
        unknown = [n for n in header if entity.field(n) is None and n not in extra_columns]
        if unknown:
            known = ", ".join([entity.field_names, *extra_columns])
            raise SourceError(
                f"{path.name}: unknown column {unknown[0]!r}; {entity.name} has {known}"
            )
        line = lines.number
        while True:
            lines.start_record()
            try:
                cells = next(reader)
            except StopIteration:
                return
            except (LineTooLong, csv.Error) as error:
                # Nothing of it is kept (raw None): a failed file cannot hold it.
                start, line = line + 1, lines.number
                problem = str(error) if isinstance(error, LineTooLong) else f"not CSV: {error}"
                yield SourceRow(start, None, problem)
                continue
            start, line = line + 1, lines.number
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(header):
                problem = f"{len(cells)} cells where the header has {len(header)}"
                yield SourceRow(start, None, problem, cells)
                continue
            data = {
                name: _cell(entity, name, cell)
                for name, cell in zip(header, cells, strict=True)
                if cell != ""
            }
            yield SourceRow(start, data, raw=dict(zip(header, cells, strict=True)))


def _cell(entity: Entity, name: str, cell: str) -> Any:
    spec = entity.field(name)
    if spec is not None and spec.kind is Kind.INT:
        # Numbers are text in CSV; one that is not plain ASCII digits is left for the engine to
        # report (as it would report that text in JSON).
        number = ascii_int(cell.strip())
        return cell if number is None else number
    return cell


def jsonl_rows(path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[SourceRow]:
    with path.open("rb") as handle:
        lines = BoundedLines(handle, max_line_bytes)
        while True:
            try:
                text = next(lines)
            except StopIteration:
                return
            except LineTooLong as long:
                # Nothing of it is kept (raw and text None): a failed file cannot hold it.
                yield SourceRow(long.line, None, str(long))
                continue
            number = lines.number
            if not text.strip():
                continue
            line = text.rstrip("\r\n")
            try:
                data = orjson.loads(text)
            except orjson.JSONDecodeError as error:
                yield SourceRow(number, None, f"not valid JSON: {error}", line, line)
                continue
            if not isinstance(data, dict):
                problem = "each line must be a JSON object of fields"
                yield SourceRow(number, None, problem, data, line)
                continue
            yield SourceRow(number, data, raw=data, text=line)
