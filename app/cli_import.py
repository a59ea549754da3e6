"""`batchery import FILE --entity cake-orders [--atomic]`: the progress bar and the report of
failed rows. The work itself is `app.bulk.importing`; the files are read by `app.bulk.jobs.sources`
(the formats, shared with bulk jobs, are described there). Line numbers in the report are the
file's own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from app.bulk import ENTITIES, Entity
from app.bulk.chunking import AdaptiveChunker
from app.bulk.importing import Importer, ImportResult, Progress, SourceRow
from app.bulk.jobs import sources
from app.bulk.jobs.sources import SourceError as SourceError
from app.bulk_settings import bulk_engine
from app.settings import Settings


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
        return sources.format_of(self.path, self.file_format)


def entity_named(name: str) -> Entity:
    return ENTITIES[name]


def count_rows(job: ImportJob) -> int:
    return sources.count_rows(job.path, job.format, job.entity)


def read_rows(job: ImportJob) -> Iterator[SourceRow]:
    return sources.read_rows(job.path, job.format, job.entity)


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
