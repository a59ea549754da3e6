"""A GraphQL multipart request that only submits bulk jobs may carry a file up to
BATCHERY_JOBS_MAX_FILE_BYTES, past BATCHERY_MAX_FILE_BYTES; any other keeps the transport's limit
(app/http/job_uploads.py)."""

from __future__ import annotations

from app.db import jobs as rows
from tests.app.http.forms import body, field, file, headers, upload_operation
from tests.app.http.jobs_kit import bakeries_jsonl

SUBMIT = (
    "mutation($file: Upload!) { submitBulkJob(file: $file, entity: BAKERIES, "
    "operation: CREATE) { id total } }"
)
CONTENT = bakeries_jsonl(40)  # about 2 KB


def multipart(operations) -> bytes:
    return body(
        field("operations", operations),
        field(
            "map",
            {"0": ["variables.file"] if isinstance(operations, dict) else ["0.variables.file"]},
        ),
        file("0", CONTENT, "records.jsonl", "application/x-ndjson"),
    )


async def test_a_job_file_may_be_larger_than_an_ordinary_upload(app_client, engine):
    async with app_client(max_file_bytes=1024, max_body_bytes=1500) as client:
        response = await client.post(
            "/graphql",
            content=multipart({"query": SUBMIT, "variables": {"file": None}}),
            headers=headers(),
        )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["submitBulkJob"]["total"] == 40


async def test_any_other_operation_keeps_the_transports_file_limit(app_client, engine):
    operations = upload_operation()
    async with app_client(max_file_bytes=1024) as client:
        response = await client.post("/graphql", content=multipart(operations), headers=headers())
    assert response.status_code == 413
    error = response.json()["errors"][0]
    assert error["extensions"]["setting"] == "BATCHERY_MAX_FILE_BYTES"


async def test_a_batch_mixing_a_submit_with_another_mutation_keeps_it_too(app_client, engine):
    operations = [
        {"query": SUBMIT, "variables": {"file": None}},
        {"query": "mutation { deleteManyBakeries(ids: []) { success } }"},
    ]
    async with app_client(max_file_bytes=1024) as client:
        response = await client.post("/graphql", content=multipart(operations), headers=headers())
    assert response.status_code == 413
    assert await rows.list_jobs(engine, owner=None, status=None, first=5) == []


async def test_a_job_file_over_the_jobs_limit_is_refused_naming_it(app_client, engine):
    async with app_client(max_file_bytes=1024, jobs_max_file_bytes=1500) as client:
        response = await client.post(
            "/graphql",
            content=multipart({"query": SUBMIT, "variables": {"file": None}}),
            headers=headers(),
        )
    assert response.status_code == 413
    error = response.json()["errors"][0]
    assert error["extensions"]["setting"] == "BATCHERY_JOBS_MAX_FILE_BYTES"
    assert await rows.list_jobs(engine, owner=None, status=None, first=5) == []
