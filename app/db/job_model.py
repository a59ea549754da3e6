"""What a bulk job is, as its row in `bulk_jobs` stores it: plain dataclasses and enums.

They live in the data layer because the data layer returns them (`app.db.jobs`) and the layer
contract forbids `app.db` to import `app.bulk`. For the same reason the two bulk values a job's
row stores, `Operation` and `BatchOptions`, are defined here; `app.bulk.model` and
`app.bulk.jobs.model` re-export everything, and the rest of the code imports them from there.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class Operation(enum.Enum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    UPSERT = "UPSERT"
    DELETE = "DELETE"


@dataclass(frozen=True, slots=True)
class BatchOptions:
    atomic: bool = False
    return_records: bool = False
    continue_on_error: bool = True
    validate_only: bool = False


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
    # `processed` records were attempted and their outcome committed (succeeded + failed);
    # records never attempted (a cancel, a failure) are total - processed.
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
    # How many times a worker claimed it (a resumed job was claimed again), clean hand-backs
    # (`release_lease` without an error: a worker stopping) not counted.
    attempts: int = 0
    # The worker running it, and until when the others leave it alone.
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    # The checkpoint: the sizes of results.jsonl and failed.<fmt> when `counts.processed` records
    # were committed (the runner truncates the files back to them when it resumes).
    results_bytes: int = 0
    failed_bytes: int = 0
