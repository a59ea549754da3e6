"""Reading records from CSV and JSON Lines files: what `batchery import` and bulk jobs both read.

CSV: a header row of field names (e.g. bakeryId,writtenPhrase,currentTotal,status,externalId),
then one record per row; an empty cell leaves the field out; a blank row is skipped. JSON Lines:
one JSON object of fields per line; blank lines are skipped. Line numbers are the file's own (a
CSV record spanning several lines is numbered by its first line).

Records are read one at a time from the file, never all at once. Every record the file holds is
yielded, the unreadable ones too (with `problem` set), so counting and skipping records give the
same numbers whoever reads the file: the bulk jobs' checkpoints count records this way.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import orjson

from app.bulk.entities import Entity, Kind
from app.bulk.importing import SourceRow

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
) -> Iterator[SourceRow]:
    """The file's records from the `skip`-th on. `extra_columns`: CSV header names accepted on
    top of the entity's fields (a job's `id` column)."""
    if not path.is_file():
        raise SourceError(f"no such file: {path}")
    rows = csv_rows(path, entity, extra_columns) if file_format == CSV else jsonl_rows(path)
    return itertools.islice(rows, skip, None) if skip else rows


def count_rows(
    path: Path, file_format: str, entity: Entity, *, extra_columns: Collection[str] = ()
) -> int:
    """How many records the file holds (unreadable ones included); SourceError on a bad header."""
    return sum(1 for _ in read_rows(path, file_format, entity, extra_columns=extra_columns))


def csv_header(path: Path) -> list[str]:
    """The CSV file's header row ([] for an empty file)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return next(csv.reader(handle), [])


def csv_rows(
    path: Path, entity: Entity, extra_columns: Collection[str] = ()
) -> Iterator[SourceRow]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        unknown = [n for n in header if entity.field(n) is None and n not in extra_columns]
        if unknown:
            known = ", ".join([entity.field_names, *extra_columns])
            raise SourceError(
                f"{path.name}: unknown column {unknown[0]!r}; {entity.name} has {known}"
            )
        line = reader.line_num
        for cells in reader:
            start, line = line + 1, reader.line_num
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
        # Numbers are text in CSV; one that does not parse is left for the engine to report.
        try:
            return int(cell.strip())
        except ValueError:
            return cell
    return cell


def jsonl_rows(path: Path) -> Iterator[SourceRow]:
    with path.open(encoding="utf-8-sig") as handle:
        for number, text in enumerate(handle, start=1):
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
