"""Which GraphQL multipart requests may carry files as large as a bulk job's.

A job's file may be up to BATCHERY_JOBS_MAX_FILE_BYTES (2 GiB), an ordinary upload (a photo)
up to BATCHERY_MAX_FILE_BYTES (20 MiB). The multipart transport reads `operations` before any
file, so it can tell: when every operation of the request is a mutation whose only root fields
are `submitBulkJob`, its files get the jobs' limit (and the body as much room); any other request
keeps the transport's. The job's own limit is checked again by JobsService as the file streams
into the job's directory.
"""

from __future__ import annotations

from typing import Any

from graphql import OperationType
from starlette.datastructures import State

from app.http.audit import root_fields
from app.http.multipart import LargerFiles
from schema.execution import Executor

SUBMIT = "submitBulkJob"


def job_files(state: State) -> LargerFiles | None:
    """The larger limit, when this process takes bulk jobs."""
    jobs = getattr(state, "jobs", None)
    if jobs is None:
        return None
    executor: Executor = state.executor

    def applies(operations: Any) -> bool:
        elements = operations if isinstance(operations, list) else [operations]
        return all(_only_submits(executor, element) for element in elements)

    return LargerFiles(jobs.config.max_file_bytes, "jobs_max_file_bytes", applies)


def _only_submits(executor: Executor, element: Any) -> bool:
    if not isinstance(element, dict) or not isinstance(element.get("query"), str):
        return False
    name = element.get("operationName")
    if name is not None and not isinstance(name, str):
        return False
    # Prepared (parsed, validated, cached) as it will be to run: not one parse more.
    prepared = executor.prepare(element["query"])
    if prepared.document is None or prepared.operation_type(name) is not OperationType.MUTATION:
        return False
    return root_fields(prepared.document, name) == [SUBMIT]
