"""What a bulk job is, and the progress events it emits: plain dataclasses, no transport."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from app.bulk.model import BatchOptions, Operation


class JobStatus(enum.Enum):
    # Shopify's bulk operation statuses; Salesforce's lifecycle maps onto them.
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    CANCELING = "CANCELING"
    CANCELED = "CANCELED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"

    @property
    def final(self) -> bool:
        return self in FINAL


FINAL = frozenset({JobStatus.COMPLETED, JobStatus.CANCELED, JobStatus.FAILED, JobStatus.EXPIRED})
# A job a worker may still take (a new one, or one whose worker's lease ran out).
CLAIMABLE = frozenset({JobStatus.CREATED, JobStatus.RUNNING, JobStatus.CANCELING})


class FileFormat(enum.Enum):
    JSONL = "jsonl"
    CSV = "csv"


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What the client asked for: the records' entity ("bakeries", "cake-orders"), what to do
    with each, in which format the file is, and the bulk options."""

    entity: str
    operation: Operation
    file_format: FileFormat
    options: BatchOptions = field(default_factory=BatchOptions)


@dataclass(frozen=True, slots=True)
class JobCounts:
    total: int = 0
    processed: int = 0
    succeeded: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class Job:
    """A job's row as the data layer returns it."""

    id: str
    owner: str
    spec: JobSpec
    status: JobStatus
    counts: JobCounts
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # Why it failed (FAILED) or why it ended early; None otherwise.
    error_code: str | None = None
    error_message: str | None = None
    # When its files are removed and the job becomes EXPIRED.
    expires_at: datetime | None = None
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class JobProgress:
    """One live update. Counts never go backwards; `final` is the last event of a job and
    matches its row."""

    job_id: str
    status: JobStatus
    counts: JobCounts
    # Records per second since the job started running, and the seconds left at that rate.
    rate: float | None = None
    eta_seconds: float | None = None
    final: bool = False
    at: float = 0.0
