"""The bulk engine's limits, taken from `Settings`.

The engine (`app.bulk`) is given its limits and never reads configuration itself, so it can be
used (and tested) with any; this is the one place that maps `BATCHERY_*` settings onto it, for
the GraphQL mutations, the REST façade and `batchery import` alike.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from app.bulk import BatchOptions, BulkEngine, Limits
from app.bulk.idempotency import IdempotencyStore
from app.settings import Settings


def bulk_limits(settings: Settings) -> Limits:
    return Limits(
        enabled=settings.bulk_enabled,
        max_records=settings.max_records_per_batch,
        defaults=BatchOptions(
            atomic=settings.bulk_default_atomic,
            return_records=settings.bulk_default_return_records,
            continue_on_error=settings.bulk_default_continue_on_error,
            validate_only=settings.bulk_default_validate_only,
        ),
    )


def bulk_engine(engine: AsyncEngine, settings: Settings) -> BulkEngine:
    return BulkEngine(engine, bulk_limits(settings))


def idempotency_store(engine: AsyncEngine, settings: Settings) -> IdempotencyStore:
    return IdempotencyStore(
        engine,
        ttl_seconds=settings.idempotency_ttl_seconds,
        lock_seconds=settings.idempotency_lock_seconds,
    )
