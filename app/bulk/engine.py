"""`BulkEngine`: runs one batch request end to end, as the GraphQL mutations and the REST façade
both call it.

A batch is one transaction whatever its options; `atomic` decides what a failing record does to
the others, not how many commits there are. The transaction is kept only when something is to be
kept: never for `validateOnly`, not for an atomic batch with a failure.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from app.bulk.apply import SetWriteFailed, apply
from app.bulk.entities import Entity
from app.bulk.model import (
    BatchMeta,
    BatchOptions,
    BatchRequest,
    BatchResponse,
    ErrorCode,
    OptionOverrides,
    RecordError,
    RecordResult,
)
from app.db.faults import database_fault
from app.db.transactions import write_connection
from app.words import counted

logger = logging.getLogger("batchery.bulk")


@dataclass(frozen=True, slots=True)
class Limits:
    enabled: bool = True
    max_records: int = 200
    defaults: BatchOptions = field(default_factory=BatchOptions)


class BulkEngine:
    def __init__(self, engine: AsyncEngine, limits: Limits | None = None) -> None:
        self.engine = engine
        self.limits = limits or Limits()

    def options(self, overrides: OptionOverrides | None) -> BatchOptions:
        """The request's options, with the server's defaults for those it left out."""
        return (overrides or OptionOverrides()).over(self.limits.defaults)

    async def run(self, entity: Entity, request: BatchRequest) -> BatchResponse:
        started = time.perf_counter()
        batch_id = uuid.uuid4().hex
        refusal = self._refusal(request)
        if refusal is not None:
            meta = _meta(batch_id, started, request)
            return BatchResponse.refused(request.operation, len(request.records), refusal, meta)
        if not request.records:
            meta = _meta(batch_id, started, request)
            return BatchResponse.of(request.operation, [], meta)
        return await self._run(entity, request, batch_id, started)

    async def run_one(self, entity: Entity, request: BatchRequest) -> BatchResponse:
        """A single record through the same rules, whether or not bulk operations are enabled
        (what the REST resource routes use)."""
        assert len(request.records) == 1
        return await self._run(entity, request, uuid.uuid4().hex, time.perf_counter())

    def _refusal(self, request: BatchRequest) -> RecordError | None:
        if not self.limits.enabled:
            return RecordError(
                ErrorCode.BULK_DISABLED, "bulk operations are disabled on this server"
            )
        if len(request.records) > self.limits.max_records:
            return RecordError(
                ErrorCode.BATCH_TOO_LARGE,
                f"a batch holds at most {counted(self.limits.max_records, 'record')}, got "
                f"{len(request.records)}; nothing was processed: split it into smaller batches",
            )
        return None

    async def _run(
        self, entity: Entity, request: BatchRequest, batch_id: str, started: float
    ) -> BatchResponse:
        try:
            try:
                results = await self._attempt(entity, request, isolated=False)
            except SetWriteFailed as reason:
                logger.info(
                    "batch %s: set-based write refused (%s); record by record", batch_id, reason
                )
                results = await self._attempt(entity, request, isolated=True)
        except Exception as failure:
            fault = database_fault(failure)
            if fault is not None:
                first_line = next(iter(str(failure).splitlines()), "")
                logger.warning("batch %s: %s (%s)", batch_id, fault.code, first_line)
                error = RecordError(fault.code, f"batch {batch_id}: {fault}")
            else:
                logger.exception(
                    "batch %s failed (%s %s)", batch_id, request.operation.value, entity.name
                )
                error = RecordError(
                    ErrorCode.INTERNAL,
                    f"an unexpected fault stopped batch {batch_id}; nothing was written",
                )
            meta = _meta(batch_id, started, request)
            return BatchResponse.refused(request.operation, len(request.records), error, meta)
        return BatchResponse.of(request.operation, results, _meta(batch_id, started, request))

    async def _attempt(
        self, entity: Entity, request: BatchRequest, *, isolated: bool
    ) -> list[RecordResult]:
        async with write_connection(self.engine) as conn, conn.begin() as transaction:
            results = await apply(conn, entity, request, isolated=isolated)
            if not keeps(request.options, results):
                await transaction.rollback()
        return results


def keeps(options: BatchOptions, results: list[RecordResult]) -> bool:
    if options.validate_only:
        return False
    return not options.atomic or all(result.success for result in results)


def _meta(batch_id: str, started: float, request: BatchRequest) -> BatchMeta:
    return BatchMeta(
        batch_id=batch_id,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        validate_only=request.options.validate_only,
        atomic=request.options.atomic,
    )
