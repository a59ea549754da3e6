"""Bulk jobs in the schema: submit a file of records, follow, cancel and read its job.

Everything here needs the `bulk` scope, and a job is visible only to its owner (the caller that
submitted it) and to callers with `admin`: to anyone else a job is answered exactly like one that
does not exist (null, or `NOT_FOUND`), so ids cannot be probed. The work is `JobsService`'s
(app/bulk/jobs/service.py, on `info.context.jobs`): `submitBulkJob` streams the `Upload` to the
job's directory chunk by chunk (never whole in memory) and the service checks the limits; its
refusals become errors with a code and the `BATCHERY_*` setting that sets the limit.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from app.bulk.jobs.model import FileFormat, Job, JobProgress, JobSpec, JobStatus
from app.bulk.jobs.service import JobRefused, Once
from app.bulk.model import Operation, OptionOverrides
from app.bulk_settings import bulk_limits, idempotency_store
from app.db.audit import job_submitted, record
from app.uploads import UploadedFile
from schema.access import ADMIN, BULK, Caller, requires
from schema.bulk.idempotency import idempotency_key, scope
from schema.bulk.inputs import BatchOptions
from schema.directives import DATABASE, sliced_by

if TYPE_CHECKING:
    from app.bulk.jobs.service import JobsService

strawberry.enum(JobStatus, name="BulkJobStatus")
strawberry.enum(FileFormat, name="BulkJobFileFormat")


@strawberry.enum(name="BulkJobEntity")
class JobEntity(enum.Enum):
    BAKERIES = "bakeries"
    CAKE_ORDERS = "cake-orders"


ENTITIES = {"bakeries": "BAKERIES", "cake-orders": "CAKE_ORDERS"}
DEFAULT_PAGE = 20
JOB_ID_LENGTH = 32
# What each refusal of the service answers (its setting is named in the message).
REFUSAL_SETTINGS = {
    "FILE_TOO_LARGE": "BATCHERY_JOBS_MAX_FILE_BYTES",
    "TOO_MANY_RECORDS": "BATCHERY_JOBS_MAX_RECORDS",
    "ATOMIC_TOO_LARGE": "BATCHERY_JOBS_MAX_ATOMIC_RECORDS",
    "TOO_MANY_ACTIVE_JOBS": "BATCHERY_JOBS_MAX_ACTIVE_PER_CLIENT",
}
SUFFIXES = {".jsonl": FileFormat.JSONL, ".ndjson": FileFormat.JSONL, ".csv": FileFormat.CSV}
MEDIA_TYPES = {
    "application/x-ndjson": FileFormat.JSONL,
    "application/jsonl": FileFormat.JSONL,
    "application/jsonlines": FileFormat.JSONL,
    "text/csv": FileFormat.CSV,
}


@strawberry.type(description="A file of records processed in the background (issue: bulk jobs).")
class BulkJob:
    id: strawberry.ID
    status: JobStatus
    entity: str = strawberry.field(description="bakeries or cake-orders.")
    operation: Operation
    file_format: FileFormat
    atomic: bool
    owner: str = strawberry.field(description="The caller that submitted it (key:<id>).")
    total: int = strawberry.field(description="Records in the file.")
    processed: int = strawberry.field(description="Records committed so far (never decreases).")
    succeeded: int
    failed: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None = strawberry.field(
        description="When its files are removed and it becomes EXPIRED."
    )
    error_code: str | None
    error_message: str | None
    results_url: str | None = strawberry.field(
        description="JSONL of every processed record's outcome (line, id, success, errors)."
    )
    failed_url: str | None = strawberry.field(
        description="Only the failed records, in the input's format: fix them and resubmit."
    )
    unprocessed_url: str | None = strawberry.field(
        description="The records never attempted (the job was canceled or failed)."
    )


@strawberry.type(description="One live update of a job; the last one has final = true.")
class BulkJobProgress:
    job_id: strawberry.ID
    status: JobStatus
    total: int
    processed: int
    succeeded: int
    failed: int
    rate: float | None = strawberry.field(description="Records per second so far.")
    eta_seconds: float | None
    final: bool = strawberry.field(description="The last event: it matches bulkJob(id).")


def job_urls(base: str, job: Job) -> dict[str, str | None]:
    """Where its files are downloaded (REST, owner-checked); None where there is nothing yet."""
    path = f"{base}/api/jobs/{job.id}"
    counts, status = job.counts, job.status
    stopped = status in (JobStatus.CANCELED, JobStatus.FAILED)
    return {
        "results_url": f"{path}/results" if counts.processed or status.final else None,
        "failed_url": f"{path}/failed" if counts.failed else None,
        "unprocessed_url": f"{path}/unprocessed"
        if stopped and counts.processed < counts.total
        else None,
    }


def to_bulk_job(job: Job, base: str = "") -> BulkJob:
    counts = job.counts
    return BulkJob(
        id=strawberry.ID(job.id),
        status=job.status,
        entity=job.spec.entity,
        operation=job.spec.operation,
        file_format=job.spec.file_format,
        atomic=job.spec.options.atomic,
        owner=job.owner,
        total=counts.total,
        processed=counts.processed,
        succeeded=counts.succeeded,
        failed=counts.failed,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        expires_at=job.expires_at,
        error_code=job.error_code,
        error_message=job.error_message,
        **job_urls(base, job),
    )


def to_progress(event: JobProgress) -> BulkJobProgress:
    counts = event.counts
    return BulkJobProgress(
        job_id=strawberry.ID(event.job_id),
        status=event.status,
        total=counts.total,
        processed=counts.processed,
        succeeded=counts.succeeded,
        failed=counts.failed,
        rate=event.rate,
        eta_seconds=event.eta_seconds,
        final=event.final,
    )


def may_see(caller: Caller, job: Job) -> bool:
    return job.owner == caller.id or ADMIN in caller.scopes


def not_found(job_id: str) -> GraphQLError:
    # The same words whether the job does not exist or belongs to someone else.
    return GraphQLError(f"no bulk job has id {job_id!r}", extensions={"code": "NOT_FOUND"})


def service(info: Info) -> JobsService:
    jobs: JobsService | None = info.context.jobs
    if jobs is None:
        raise GraphQLError(
            "This server does not run bulk jobs here (no jobs service).",
            extensions={"code": "JOBS_UNAVAILABLE"},
        )
    return jobs


def base_url(info: Info) -> str:
    request = info.context.request
    url = getattr(request, "base_url", None)
    return str(url).rstrip("/") if url is not None else ""


async def visible_job(info: Info, job_id: str) -> Job | None:
    if len(job_id) > JOB_ID_LENGTH:
        return None
    job = await service(info).get(job_id)
    return job if job is not None and may_see(info.context.caller, job) else None


def file_format(file: UploadedFile, chosen: FileFormat | None) -> FileFormat:
    if chosen is not None:
        return chosen
    name = (file.filename or "").lower()
    for suffix, found in SUFFIXES.items():
        if name.endswith(suffix):
            return found
    media_type = file.content_type.split(";")[0].strip().lower()
    if media_type in MEDIA_TYPES:
        return MEDIA_TYPES[media_type]
    raise GraphQLError(
        f"format: cannot tell the format of {file.filename or 'the file'!r} "
        f"({file.content_type}): name it *.jsonl or *.csv, or pass format: JSONL or CSV.",
        extensions={"code": "BAD_USER_INPUT", "argument": "format"},
    )


def refused(error: JobRefused) -> GraphQLError:
    """A refusal of the service as the client's error: its code, and the setting of a limit."""
    extensions: dict[str, Any] = {"code": error.code}
    if error.code in REFUSAL_SETTINGS:
        extensions["setting"] = REFUSAL_SETTINGS[error.code]
    return GraphQLError(f"The job was refused: {error.message}.", extensions=extensions)


@strawberry.type
class JobsQuery:
    @strawberry.field(
        description="One bulk job, if it is yours (or you are an admin); null otherwise.",
        directives=[*requires(BULK), DATABASE],
    )
    async def bulk_job(self, info: Info, id: strawberry.ID) -> BulkJob | None:
        job = await visible_job(info, str(id))
        return to_bulk_job(job, base_url(info)) if job is not None else None

    @strawberry.field(
        description="Your bulk jobs, newest first (an admin sees everyone's).",
        directives=[*requires(BULK), DATABASE, sliced_by("first")],
    )
    async def bulk_jobs(
        self, info: Info, status: JobStatus | None = None, first: int = DEFAULT_PAGE
    ) -> list[BulkJob]:
        limit = info.context.settings.max_page_size
        if not 0 <= first <= limit:
            raise GraphQLError(
                f"first must be from 0 to {limit} (BATCHERY_MAX_PAGE_SIZE), got {first}",
                extensions={"code": "BAD_USER_INPUT", "argument": "first"},
            )
        caller: Caller = info.context.caller
        owner = None if ADMIN in caller.scopes else caller.id
        jobs = await service(info).list(owner=owner, status=status, first=first)
        base = base_url(info)
        return [to_bulk_job(job, base) for job in jobs]


@strawberry.type
class JobsMutation:
    @strawberry.mutation(
        description="Submit a JSONL or CSV file of records (the formats of `batchery import`) "
        "as a bulk job: the file is streamed to disk, counted and checked against the limits "
        "(BATCHERY_JOBS_*), and the job returned at once (CREATED). Follow it with "
        "bulkJobProgress(id) or bulkJob(id).",
        directives=[*requires(BULK), DATABASE],
    )
    async def submit_bulk_job(
        self,
        info: Info,
        file: UploadedFile,
        entity: JobEntity,
        operation: Operation,
        options: BatchOptions | None = None,
        format: FileFormat | None = None,
    ) -> BulkJob:
        context = info.context
        overrides = options.overrides() if options else OptionOverrides()
        spec = JobSpec(
            entity=entity.value,
            operation=operation,
            file_format=file_format(file, format),
            options=overrides.over(bulk_limits(context.settings).defaults),
        )
        jobs = service(info)
        key = idempotency_key(info)
        once = None
        if key is not None:
            once = Once(idempotency_store(context.engine, context.settings), key, scope(info))
        try:
            submitted = await jobs.submit_once(spec, file.chunks(), context.caller.id, once)
        except JobRefused as error:
            raise refused(error) from None
        job = submitted.job
        if not submitted.replayed:
            entry = job_submitted(job, context.caller.id, context.request_id or "none", "graphql")
            await record(context.engine, [entry])
        return to_bulk_job(job, base_url(info))

    @strawberry.mutation(
        description="Cancel a job: a job not started is CANCELED at once; a running one "
        "becomes CANCELING and stops after its current chunk (committed records stay, the "
        "rest are reported NOT_PROCESSED). A finished job is returned as it is.",
        directives=[*requires(BULK), DATABASE],
    )
    async def cancel_bulk_job(self, info: Info, id: strawberry.ID) -> BulkJob:
        job = await visible_job(info, str(id))
        if job is None:
            raise not_found(str(id))
        canceled = await service(info).cancel(job.id)
        return to_bulk_job(canceled or job, base_url(info))


@strawberry.type
class JobsSubscription:
    @strawberry.subscription(
        description="A job's progress: its state now, then at most a few updates a second "
        "(counts, rate, ETA), then a final event that matches bulkJob(id). Counts never go "
        "backwards.",
        directives=[*requires(BULK), DATABASE],
    )
    async def bulk_job_progress(
        self, info: Info, id: strawberry.ID
    ) -> AsyncGenerator[BulkJobProgress, None]:
        job = await visible_job(info, str(id))
        if job is None:
            raise not_found(str(id))
        events = service(info).watch(job.id)
        try:
            async for event in events:
                yield to_progress(event)
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
