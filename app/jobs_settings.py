"""The jobs machinery, put together from `Settings` (like app/bulk_settings.py for the bulk
engine): the one place that maps `BATCHERY_JOBS_*` onto `app.bulk.jobs`, for the API process
(`app.main`) and `batchery worker` (`app.cli_worker`) alike."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from app.bulk.jobs.config import JobsConfig
from app.bulk.jobs.model import Job
from app.bulk.jobs.progress import ProgressBus
from app.bulk.jobs.service import JobsService, make_bus
from app.bulk.jobs.worker import Execute
from app.settings import Settings

if TYPE_CHECKING:
    from app.bulk.jobs.runner import RunnerConfig

__all__ = ["jobs_config", "jobs_executor", "jobs_service", "make_bus", "runner_config"]


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
        max_line_bytes=settings.jobs_max_line_bytes,
    )


def runner_config(settings: Settings) -> RunnerConfig:
    from app.bulk.jobs.runner import RunnerConfig

    return RunnerConfig(
        lease_seconds=settings.jobs_lease_seconds,
        progress_interval_seconds=settings.jobs_progress_interval_seconds,
        max_atomic_records=settings.jobs_max_atomic_records,
        max_chunk=settings.jobs_max_chunk_records,
        min_chunk=min(10, settings.jobs_max_chunk_records),
        max_line_bytes=settings.jobs_max_line_bytes,
    )


def jobs_executor(
    settings: Settings, engine: AsyncEngine, config: JobsConfig, bus: ProgressBus
) -> Execute:
    """What a worker does with a job it claimed: run it through the runner, its progress on
    the bus."""
    from app.bulk.jobs.runner import JobRunner

    run_config = runner_config(settings)

    async def execute(job: Job, worker: str) -> None:
        runner = JobRunner(engine, config.jobs_dir, worker, run_config, progress=bus.publish)
        await runner.run(job)

    return execute


def jobs_service(settings: Settings, engine: AsyncEngine) -> JobsService:
    """The API process's service: it runs the jobs itself when embedded, else only enqueues."""
    config = jobs_config(settings)
    bus = make_bus(config)
    execute = jobs_executor(settings, engine, config, bus) if config.embedded else None
    return JobsService(engine, config, execute=execute, bus=bus)
