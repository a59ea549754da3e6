"""The jobs machinery's configuration, taken from `Settings` (like app/bulk_settings.py for the
bulk engine): the one place that maps `BATCHERY_JOBS_*` onto `app.bulk.jobs`."""

from __future__ import annotations

from app.bulk.jobs.config import JobsConfig
from app.settings import Settings


def jobs_config(settings: Settings) -> JobsConfig:
    return JobsConfig(
        jobs_dir=settings.resolved_jobs_dir,
        broker_url=settings.jobs_broker,
        key_prefix=settings.jobs_key_prefix,
        max_file_bytes=settings.jobs_max_file_bytes,
        max_records=settings.jobs_max_records,
        max_atomic_records=settings.jobs_max_atomic_records,
        max_active_per_client=settings.jobs_max_active_per_client,
        retention_seconds=settings.jobs_retention_seconds,
        lease_seconds=settings.jobs_lease_seconds,
        progress_interval_seconds=settings.jobs_progress_interval_seconds,
        worker_concurrency=settings.jobs_worker_concurrency,
    )
