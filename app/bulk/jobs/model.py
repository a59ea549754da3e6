"""What a bulk job is, and the progress events it emits: plain dataclasses, no transport.

The job's own values are defined next to its table (`app.db.job_model`: the data layer returns
them and may not import `app.bulk`); import them from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.db.job_model import (
    CLAIMABLE,
    FINAL,
    FileFormat,
    Job,
    JobCounts,
    JobSpec,
    JobStatus,
)

__all__ = [
    "CLAIMABLE",
    "FINAL",
    "FileFormat",
    "Job",
    "JobCounts",
    "JobProgress",
    "JobSpec",
    "JobStatus",
]


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
