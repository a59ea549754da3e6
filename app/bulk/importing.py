"""Long imports: many records created through the bulk engine in adaptive chunks, with progress.

Without `atomic`, each chunk is a batch of its own (committed as it goes, valid rows written,
invalid ones reported). With `atomic`, every chunk runs in one transaction that is committed only
if no row failed: the whole file is imported, or nothing is.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.bulk.apply import SetWriteFailed, apply
from app.bulk.chunking import AdaptiveChunker
from app.bulk.engine import BulkEngine
from app.bulk.entities import Entity
from app.bulk.model import (
    BatchOptions,
    BatchRecord,
    BatchRequest,
    ErrorCode,
    Operation,
    RecordError,
    RecordResult,
)
from app.db.transactions import write_connection
from app.words import counted

# (records done, records in total), after each chunk.
Progress = Callable[[int, int], None]
PER_RECORD = BatchOptions(atomic=False, continue_on_error=True)


@dataclass(frozen=True, slots=True)
class SourceRow:
    line: int
    # The record's fields; None when the line could not even be read (then `problem` says why).
    data: dict[str, Any] | None
    problem: str | None = None
    # The record as read, for the report: CSV, a dict of header -> cell (a list of cells when
    # the row does not fit the header); JSON Lines, the object (the text when it is not one).
    raw: Any = None
    # JSON Lines: the line itself, without its line ending (what a file of failed records holds).
    text: str | None = None


@dataclass(frozen=True, slots=True)
class RowFailure:
    line: int
    errors: tuple[RecordError, ...]
    raw: Any


@dataclass(slots=True)
class ImportResult:
    total: int
    written: int = 0
    failures: list[RowFailure] = field(default_factory=list)
    chunk_sizes: list[int] = field(default_factory=list)
    # False when an atomic import was rolled back.
    committed: bool = True


class ImportRefused(Exception):
    pass


class Importer:
    def __init__(
        self,
        bulk: BulkEngine,
        entity: Entity,
        chunker: AdaptiveChunker,
        *,
        progress: Progress | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not bulk.limits.enabled:
            raise ImportRefused("bulk operations are disabled on this server (bulk_enabled)")
        if chunker.maximum > bulk.limits.max_records:
            raise ImportRefused(
                f"chunks of up to {counted(chunker.maximum, 'record')} exceed "
                f"max_records_per_batch ({bulk.limits.max_records})"
            )
        self.bulk = bulk
        self.entity = entity
        self.chunker = chunker
        self.progress = progress or (lambda done, total: None)
        self.clock = clock

    async def run(
        self, rows: Callable[[], Iterable[SourceRow]], total: int, *, atomic: bool
    ) -> ImportResult:
        """`rows()` gives the rows from the start (an atomic import may need to read twice)."""
        if not atomic:
            return await self._per_chunk(rows(), total)
        try:
            return await self._all_or_nothing(rows(), total, isolated=False)
        except SetWriteFailed:
            # The database refused a set-based write: start over, record by record.
            self.progress(0, total)
            return await self._all_or_nothing(rows(), total, isolated=True)

    async def _per_chunk(self, rows: Iterable[SourceRow], total: int) -> ImportResult:
        result = ImportResult(total)
        for chunk in self._chunks(rows):
            readable = self._readable(chunk, result)
            if readable:
                request = _create(readable)
                started = self.clock()
                response = await self.bulk.run(self.entity, request)
                self.chunker.record(len(readable), self.clock() - started)
                if response.error is not None:
                    results = [
                        RecordResult(i, False, errors=(response.error,))
                        for i in range(len(readable))
                    ]
                else:
                    results = list(response.results)
                self._collect(readable, results, result)
            self._advance(result, chunk)
        return result

    async def _all_or_nothing(
        self, rows: Iterable[SourceRow], total: int, *, isolated: bool
    ) -> ImportResult:
        result = ImportResult(total)
        async with write_connection(self.bulk.engine) as conn, conn.begin() as transaction:
            for chunk in self._chunks(rows):
                readable = self._readable(chunk, result)
                if readable:
                    started = self.clock()
                    results = await apply(conn, self.entity, _create(readable), isolated=isolated)
                    self.chunker.record(len(readable), self.clock() - started)
                    self._collect(readable, results, result)
                self._advance(result, chunk)
            if result.failures:
                await transaction.rollback()
                result.committed = False
                result.written = 0
        return result

    def _chunks(self, rows: Iterable[SourceRow]) -> Iterator[list[SourceRow]]:
        source = iter(rows)
        # The size is read again for every chunk: it changes as chunks are timed.
        while chunk := list(itertools.islice(source, self.chunker.size)):
            yield chunk

    def _readable(self, chunk: Sequence[SourceRow], result: ImportResult) -> list[SourceRow]:
        for row in chunk:
            if row.data is None:
                error = RecordError(ErrorCode.INVALID_VALUE, row.problem or "unreadable line")
                result.failures.append(RowFailure(row.line, (error,), row.raw))
        return [row for row in chunk if row.data is not None]

    def _collect(
        self, rows: Sequence[SourceRow], results: Sequence[RecordResult], result: ImportResult
    ) -> None:
        for row, outcome in zip(rows, results, strict=True):
            if outcome.success:
                result.written += 1
            else:
                result.failures.append(RowFailure(row.line, outcome.errors, row.raw))

    def _advance(self, result: ImportResult, chunk: Sequence[SourceRow]) -> None:
        result.chunk_sizes.append(len(chunk))
        self.progress(sum(result.chunk_sizes), result.total)


def _create(rows: Sequence[SourceRow]) -> BatchRequest:
    return BatchRequest(
        Operation.CREATE,
        [BatchRecord(data=row.data, label=f"line {row.line}") for row in rows],
        PER_RECORD,
    )
