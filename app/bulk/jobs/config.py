"""How the jobs machinery is configured: one frozen value, built from `Settings` by
`app/jobs_settings.py` (app.bulk never reads configuration itself), and from anything in tests.

Each limit carries the name of the `BATCHERY_*` variable that sets it, so a refusal can tell the
client which setting to change without app.bulk knowing where settings come from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.bulk.jobs.lines import DEFAULT_MAX_LINE_BYTES


@dataclass(frozen=True, slots=True)
class JobsConfig:
    jobs_dir: Path
    # "" runs jobs in this process (taskiq's InMemoryBroker); a redis:// URL shares a queue
    # (a Redis stream) between API processes that enqueue and worker processes that execute.
    broker_url: str = ""
    # Redis keys (the stream, the progress channels) start with this.
    key_prefix: str = "batchery"
    max_file_bytes: int = 2 * 1024 * 1024 * 1024
    max_records: int = 10_000_000
    max_atomic_records: int = 100_000
    max_active_per_client: int = 5
    retention_seconds: float = 7 * 24 * 3600
    lease_seconds: float = 60.0
    progress_interval_seconds: float = 0.5
    worker_concurrency: int = 2
    # A record (JSON line, CSV row) longer than this is a bad record, skipped unread.
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES

    @property
    def embedded(self) -> bool:
        return not self.broker_url

    @property
    def reap_interval_seconds(self) -> float:
        # A third of the lease: a dead worker's job waits at most a lease and a third.
        return self.lease_seconds / 3


# The variables behind the limits, for refusals (the names `Settings` reads them from).
SETTING = {
    "max_file_bytes": "BATCHERY_JOBS_MAX_FILE_BYTES",
    "max_records": "BATCHERY_JOBS_MAX_RECORDS",
    "max_atomic_records": "BATCHERY_JOBS_MAX_ATOMIC_RECORDS",
    "max_active_per_client": "BATCHERY_JOBS_MAX_ACTIVE_PER_CLIENT",
    "max_line_bytes": "BATCHERY_JOBS_MAX_LINE_BYTES",
}
