"""Bulk jobs over REST (docs/jobs.md), the twin of the GraphQL fields in schema/jobs.py.

| route | answer |
| --- | --- |
| `POST /api/jobs` | 202, the job, `Location: /api/jobs/{id}` (body: app/http/rest/job_uploads.py) |
| `GET /api/jobs?status=&first=` | your jobs, newest first (an admin's: everyone's) |
| `GET /api/jobs/{id}` | the job |
| `POST /api/jobs/{id}/cancel` | the job, CANCELED or CANCELING |
| `GET /api/jobs/{id}/results`, `/failed`, `/unprocessed` | the file, streamed |
| `GET /api/jobs/{id}/events` | its progress as Server-Sent Events, until the final one |

Every route needs the `bulk` scope. A job is its owner's (and admins'): to anyone else it is 404,
exactly like a job that does not exist. Files are found from the job's id alone, never from a
path a client sends. Refusals name their setting: 413 over BATCHERY_JOBS_MAX_FILE_BYTES (or the
records limits), 429 over BATCHERY_JOBS_MAX_ACTIVE_PER_CLIENT, 400 for a file that cannot be read.
`Idempotency-Key` on `POST /api/jobs`: a retry with the same file gets the same job (202,
`Idempotent-Replayed: true`); the same key with another file or fields is 422.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sse_starlette import ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.bulk.idempotency import HEADER
from app.bulk.jobs.files import JobFiles
from app.bulk.jobs.model import FINAL, Job, JobProgress, JobSpec, JobStatus
from app.bulk.jobs.service import JobRefused, Once
from app.bulk_settings import bulk_limits, idempotency_store
from app.db.audit import job_submitted
from app.http import audit
from app.http.access import caller_of, request_id_of
from app.http.rest.access import guarded
from app.http.rest.costs import charged
from app.http.rest.idempotency import REPLAYED
from app.http.rest.io import Handler, HttpError, answers_errors, json_response, query_int
from app.http.rest.job_uploads import entity_of, format_of, operation_of, options_of, read_upload
from app.http.sse import event_stream, json_data
from schema.access import ADMIN, BULK
from schema.jobs import JOB_ID_LENGTH, job_urls

if TYPE_CHECKING:
    from app.bulk.jobs.service import JobsService

DEFAULT_PAGE = 20
READ_CHUNK_BYTES = 256 * 1024
# A refusal of the service, as an HTTP status (its message names the setting).
STATUS_OF_REFUSAL = {
    "FILE_TOO_LARGE": 413,
    "TOO_MANY_RECORDS": 413,
    "ATOMIC_TOO_LARGE": 413,
    "TOO_MANY_ACTIVE_JOBS": 429,
    "IDEMPOTENCY_KEY_REUSED": 422,
    "IDEMPOTENCY_KEY_IN_PROGRESS": 409,
}
KINDS = ("results", "failed", "unprocessed")
MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


def service(request: Request) -> JobsService:
    jobs: JobsService | None = getattr(request.app.state, "jobs", None)
    if jobs is None:
        raise HttpError(503, "JOBS_UNAVAILABLE", "this server does not run bulk jobs")
    return jobs


def job_json(job: Job, request: Request) -> dict[str, Any]:
    counts, spec = job.counts, job.spec
    urls = job_urls(str(request.base_url).rstrip("/"), job)

    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": job.id,
        "status": job.status.value,
        "entity": spec.entity,
        "operation": spec.operation.value,
        "fileFormat": spec.file_format.value,
        "atomic": spec.options.atomic,
        "owner": job.owner,
        "total": counts.total,
        "processed": counts.processed,
        "succeeded": counts.succeeded,
        "failed": counts.failed,
        "createdAt": iso(job.created_at),
        "startedAt": iso(job.started_at),
        "finishedAt": iso(job.finished_at),
        "expiresAt": iso(job.expires_at),
        "errorCode": job.error_code,
        "errorMessage": job.error_message,
        "resultsUrl": urls["results_url"],
        "failedUrl": urls["failed_url"],
        "unprocessedUrl": urls["unprocessed_url"],
    }


def progress_json(event: JobProgress) -> dict[str, Any]:
    counts = event.counts
    return {
        "jobId": event.job_id,
        "status": event.status.value,
        "total": counts.total,
        "processed": counts.processed,
        "succeeded": counts.succeeded,
        "failed": counts.failed,
        "rate": event.rate,
        "etaSeconds": event.eta_seconds,
        "final": event.final,
    }


async def visible_job(request: Request) -> Job:
    """The job of the path's id, if the caller may see it; else 404, whichever the reason."""
    job_id = request.path_params["id"]
    job = await service(request).get(job_id) if len(job_id) <= JOB_ID_LENGTH else None
    caller = caller_of(request)
    if job is None or not (job.owner == caller.id or ADMIN in caller.scopes):
        raise HttpError(404, "NOT_FOUND", f"no bulk job has id {job_id!r}")
    return job


async def submit(request: Request) -> Response:
    jobs = service(request)
    declared = request.headers.get("content-length", "")
    limit = jobs.config.max_file_bytes
    if declared.isdigit() and int(declared) > limit + 64 * 1024:  # a form's own bytes aside
        raise HttpError(
            413,
            "FILE_TOO_LARGE",
            f"the body is {declared} bytes; one job takes a file of at most {limit} bytes "
            "(BATCHERY_JOBS_MAX_FILE_BYTES): split it into several jobs",
        )
    upload = await read_upload(request)
    settings = request.app.state.settings
    spec = JobSpec(
        entity=entity_of(upload.fields),
        operation=operation_of(upload.fields),
        file_format=format_of(upload),
        options=options_of(upload.fields).over(bulk_limits(settings).defaults),
    )
    caller = caller_of(request)
    try:
        submitted = await jobs.submit_once(spec, upload.chunks, caller.id, once_of(request))
    except JobRefused as refused:
        status = STATUS_OF_REFUSAL.get(refused.code, 400)
        raise HttpError(status, refused.code, refused.message) from None
    job = submitted.job
    headers = {"Location": f"/api/jobs/{job.id}"}
    if submitted.replayed:
        headers[REPLAYED] = "true"
    else:
        entry = job_submitted(job, caller.id, request_id_of(request), "rest")
        await audit.write(request, request.app.state.engine, [entry])
    return json_response(job_json(job, request), 202, headers=headers)


def once_of(request: Request) -> Once | None:
    """The request's Idempotency-Key, scoped to its caller (another caller's same key is
    another key) and to this route."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    caller = caller_of(request)
    scope = f"{caller.id}|rest-jobs" if caller.authenticated else "rest-jobs"
    state = request.app.state
    return Once(idempotency_store(state.engine, state.settings), key, scope)


async def list_jobs(request: Request) -> Response:
    settings = request.app.state.settings
    first = query_int(request, "first", DEFAULT_PAGE)
    if first > settings.max_page_size:
        raise HttpError(
            400,
            "BAD_REQUEST",
            f"first must be at most {settings.max_page_size} (BATCHERY_MAX_PAGE_SIZE)",
        )
    raw_status = request.query_params.get("status")
    status = None
    if raw_status:
        try:
            status = JobStatus(raw_status.strip().upper())
        except ValueError:
            names = ", ".join(s.value for s in JobStatus)
            raise HttpError(
                400, "BAD_REQUEST", f"status must be one of {names}, got {raw_status!r}"
            ) from None
    caller = caller_of(request)
    owner = None if ADMIN in caller.scopes else caller.id
    jobs = await service(request).list(owner=owner, status=status, first=first)
    return json_response({"jobs": [job_json(job, request) for job in jobs]})


async def get_job(request: Request) -> Response:
    return json_response(job_json(await visible_job(request), request))


async def cancel(request: Request) -> Response:
    job = await visible_job(request)
    canceled = await service(request).cancel(job.id)
    return json_response(job_json(canceled or job, request))


async def download(request: Request) -> Response:
    job = await visible_job(request)
    kind = request.path_params["kind"]
    if kind not in KINDS:
        raise HttpError(
            404, "NOT_FOUND", f"a job's files are {', '.join(KINDS)}; there is no {kind!r}"
        )
    files = JobFiles.of(service(request).config.jobs_dir, job.id, job.spec.file_format)
    path: Path = getattr(files, kind)
    name = path.name
    # A running job's files hold lines past its last commit: only what is committed is served.
    limit = None if job.status in FINAL else _committed_bytes(job, kind)
    if not await asyncio.to_thread(path.is_file):
        raise HttpError(
            404,
            "NOT_FOUND",
            f"job {job.id} has no {kind} file (yet): it is {job.status.value}, "
            f"{job.counts.processed} of {job.counts.total} records processed",
        )
    media_type = MEDIA_TYPES["jsonl" if kind == "results" else job.spec.file_format.value]
    filename = f"{job.id}-{name}"
    return StreamingResponse(
        _read(path, limit),
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _committed_bytes(job: Job, kind: str) -> int | None:
    if kind == "results":
        return int(getattr(job, "results_bytes", 0))
    if kind == "failed":
        return int(getattr(job, "failed_bytes", 0))
    return None


async def _read(path: Path, limit: int | None) -> AsyncIterator[bytes]:
    reader = await asyncio.to_thread(path.open, "rb")
    left = limit
    try:
        while left is None or left > 0:
            size = READ_CHUNK_BYTES if left is None else min(READ_CHUNK_BYTES, left)
            chunk = await asyncio.to_thread(reader.read, size)
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk
    finally:
        await asyncio.to_thread(reader.close)


async def events(request: Request) -> Response:
    job = await visible_job(request)
    return event_stream(_progress_events(service(request).watch(job.id)))


async def _progress_events(watched: AsyncIterator[JobProgress]) -> AsyncIterator[ServerSentEvent]:
    try:
        async for event in watched:
            yield ServerSentEvent(json_data(progress_json(event)), event="progress")
    finally:
        aclose = getattr(watched, "aclose", None)
        if aclose is not None:
            await aclose()


def _route(handler: Handler, *, audited: bool = True) -> Handler:
    return guarded(answers_errors(handler), BULK, audited=audited)


def job_routes() -> list[Route]:
    one = "/jobs/{id}"
    return [
        # Audited with the job's id (job_submitted), not as a bare POST /api/jobs.
        Route("/jobs", _route(charged(submit), audited=False), methods=["POST"]),
        Route("/jobs", _route(charged(list_jobs)), methods=["GET"]),
        Route(one, _route(charged(get_job)), methods=["GET"]),
        Route(f"{one}/cancel", _route(charged(cancel)), methods=["POST"]),
        Route(f"{one}/events", _route(charged(events)), methods=["GET"]),
        Route(
            one + "/{kind:str}",
            _route(charged(download)),
            methods=["GET"],
        ),
    ]
