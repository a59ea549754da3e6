"""`batchery import FILE --entity cake-orders [--atomic]`: reading CSV / JSON Lines files, the
progress bar, and the report of failed rows. The work itself is `app.bulk.importing`.

CSV: a header row of field names (e.g. bakeryId,writtenPhrase,currentTotal,status,externalId),
then one record per row; an empty cell leaves the field out. JSON Lines: one JSON object of fields
per line; blank lines are skipped. Line numbers in the report are the file's own (a CSV record
spanning several lines is reported at its first line).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bulk import ENTITIES, Entity
from app.bulk.chunking import AdaptiveChunker
from app.bulk.entities import Kind
from app.bulk.importing import Importer, ImportResult, Progress, SourceRow
from app.bulk_settings import bulk_engine
from app.settings import Settings

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class SourceError(ValueError):
    """The file as a whole cannot be imported (missing, unknown format, bad header)."""


@dataclass(frozen=True, slots=True)
class ImportJob:
    path: Path
    entity: Entity
    atomic: bool = False
    report: Path | None = None
    file_format: str | None = None
    target_seconds: float = 0.25
    min_chunk: int = 10
    max_chunk: int | None = None

    @property
    def report_path(self) -> Path:
        return self.report or self.path.with_name(self.path.name + ".errors.jsonl")

    @property
    def format(self) -> str:
        chosen = self.file_format or FORMATS.get(self.path.suffix.lower())
        if chosen is None:
            raise SourceError(
                f"cannot tell the format of {self.path.name}: name it .csv or .jsonl, "
                "or pass --format"
            )
        return chosen


def entity_named(name: str) -> Entity:
    return ENTITIES[name]


def count_rows(job: ImportJob) -> int:
    return sum(1 for _ in read_rows(job))


def read_rows(job: ImportJob) -> Iterator[SourceRow]:
    if not job.path.is_file():
        raise SourceError(f"no such file: {job.path}")
    if job.format == "csv":
        return _csv_rows(job.path, job.entity)
    return _jsonl_rows(job.path)


def _csv_rows(path: Path, entity: Entity) -> Iterator[SourceRow]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        unknown = [name for name in header if entity.field(name) is None]
        if unknown:
            raise SourceError(
                f"{path.name}: unknown column {unknown[0]!r}; "
                f"{entity.name} has {entity.field_names}"
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


def _jsonl_rows(path: Path) -> Iterator[SourceRow]:
    with path.open(encoding="utf-8-sig") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                data = orjson.loads(text)
            except orjson.JSONDecodeError as error:
                yield SourceRow(number, None, f"not valid JSON: {error}", text.rstrip("\n"))
                continue
            if not isinstance(data, dict):
                yield SourceRow(number, None, "each line must be a JSON object of fields", data)
                continue
            yield SourceRow(number, data, raw=data)


def write_report(path: Path, result: ImportResult) -> None:
    with path.open("w", encoding="utf-8") as report:
        for failure in sorted(result.failures, key=lambda f: f.line):
            errors = [
                {"code": e.code, "message": e.message, "field": e.field} for e in failure.errors
            ]
            entry = {"line": failure.line, "errors": errors, "record": failure.raw}
            report.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")


async def run_import(
    engine: AsyncEngine,
    settings: Settings,
    job: ImportJob,
    *,
    total: int | None = None,
    progress: Callable[[AdaptiveChunker], Progress] | None = None,
    clock: Callable[[], float] | None = None,
) -> ImportResult:
    """Imports `job` and writes its report when a row failed; raises SourceError or
    ImportRefused when it cannot start."""
    bulk = bulk_engine(engine, settings)
    maximum = min(job.max_chunk or settings.max_records_per_batch, settings.max_records_per_batch)
    minimum = min(job.min_chunk, maximum)
    chunker = AdaptiveChunker(job.target_seconds, minimum, maximum, size=minimum)
    total = count_rows(job) if total is None else total
    extra = {"clock": clock} if clock is not None else {}
    importer = Importer(
        bulk, job.entity, chunker, progress=progress(chunker) if progress else None, **extra
    )
    result = await importer.run(lambda: read_rows(job), total, atomic=job.atomic)
    if result.failures:
        write_report(job.report_path, result)
    return result
