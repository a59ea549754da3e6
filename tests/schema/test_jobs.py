"""Bulk jobs through GraphQL: submitBulkJob over the multipart spec, bulkJob(s), cancelBulkJob,
and bulkJobProgress over SSE; ownership, the `bulk` scope and the limits' errors."""

from __future__ import annotations

from tests.app.http.forms import body, field, file, headers
from tests.app.http.jobs_kit import (
    bakeries_jsonl,
    bearer,
    check_progress_order,
    new_key,
    sse_events,
)

SUBMIT = (
    "mutation($file: Upload!, $options: BatchOptions) { submitBulkJob(file: $file, "
    "entity: BAKERIES, operation: CREATE, options: $options) "
    "{ id status total atomic owner entity operation fileFormat } }"
)
JOB = (
    "query($id: ID!) { bulkJob(id: $id) { id status total processed succeeded failed "
    "resultsUrl failedUrl unprocessedUrl errorCode } }"
)
PROGRESS = (
    "subscription($id: ID!) { bulkJobProgress(id: $id) "
    "{ jobId status total processed succeeded failed rate etaSeconds final } }"
)


async def submit(
    client,
    key: str,
    content: bytes,
    filename: str = "records.jsonl",
    *,
    extra: dict[str, str] | None = None,
    **variables,
):
    operations = {"query": SUBMIT, "variables": {"file": None, **variables}}
    payload = body(
        field("operations", operations),
        field("map", {"0": ["variables.file"]}),
        file("0", content, filename, "application/octet-stream"),
    )
    sent = headers(**bearer(key), **(extra or {}))
    return await client.post("/graphql", content=payload, headers=sent)


async def graphql(client, key: str, query: str, **variables):
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=bearer(key)
    )
    return response.json()


async def progress(client, key: str, job_id: str) -> list[dict]:
    response = await client.post(
        "/graphql",
        json={"query": PROGRESS, "variables": {"id": job_id}},
        headers={"Accept": "text/event-stream", **bearer(key)},
    )
    assert response.status_code == 200, response.text
    events = list(sse_events(response.text))
    assert events[-1] == ("complete", None)
    nexts = [data for event, data in events if event == "next"]
    assert all("errors" not in data for data in nexts), nexts
    return [data["data"]["bulkJobProgress"] for data in nexts]


async def test_a_job_submitted_through_multipart_runs_and_its_final_event_matches_its_row(
    client, engine
):
    key = await new_key(engine, "read", "bulk")
    response = await submit(client, key, bakeries_jsonl(120, frozenset({7})))
    assert response.status_code == 200, response.text
    job = response.json()["data"]["submitBulkJob"]
    assert (job["status"], job["total"], job["entity"], job["operation"]) == (
        "CREATED",
        120,
        "bakeries",
        "CREATE",
    )
    assert job["owner"].startswith("key:")
    events = await progress(client, key, job["id"])
    check_progress_order(events)
    row = (await graphql(client, key, JOB, id=job["id"]))["data"]["bulkJob"]
    final = events[-1]
    for name in ("status", "total", "processed", "succeeded", "failed"):
        assert final[name] == row[name], name
    assert (row["status"], row["succeeded"], row["failed"]) == ("COMPLETED", 119, 1)
    assert row["failedUrl"].endswith(f"/api/jobs/{job['id']}/failed")
    assert row["unprocessedUrl"] is None


async def test_options_reach_the_job(client, engine):
    key = await new_key(engine, "read", "bulk")
    response = await submit(client, key, bakeries_jsonl(2), options={"atomic": True})
    assert response.json()["data"]["submitBulkJob"]["atomic"] is True


async def test_a_csv_file_is_recognised_by_its_name(client, engine):
    key = await new_key(engine, "read", "bulk")
    csv = b"name,region\nCSV bakery,SOUTH_WEST\n"
    response = await submit(client, key, csv, filename="bakeries.csv")
    job = response.json()["data"]["submitBulkJob"]
    assert (job["fileFormat"], job["total"]) == ("CSV", 1)
    assert (await progress(client, key, job["id"]))[-1]["status"] == "COMPLETED"


async def test_a_file_of_unknown_format_is_refused_naming_the_argument(client, engine):
    key = await new_key(engine, "read", "bulk")
    response = await submit(client, key, b"x", filename="records.txt")
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["argument"] == "format"


async def test_another_callers_job_is_not_found_and_an_admin_sees_it(client, engine):
    owner = await new_key(engine, "read", "bulk")
    other = await new_key(engine, "read", "bulk")
    admin = await new_key(engine, "read", "bulk", "admin")
    job = (await submit(client, owner, bakeries_jsonl(2))).json()["data"]["submitBulkJob"]
    await progress(client, owner, job["id"])
    assert (await graphql(client, other, JOB, id=job["id"]))["data"] == {"bulkJob": None}
    assert (await graphql(client, other, JOB, id="f" * 32))["data"] == {"bulkJob": None}
    listed = await graphql(client, other, "{ bulkJobs { id } }")
    assert job["id"] not in [j["id"] for j in listed["data"]["bulkJobs"]]
    canceled = await graphql(
        client, other, "mutation($id: ID!) { cancelBulkJob(id: $id) { id } }", id=job["id"]
    )
    missing = await graphql(
        client, other, "mutation($id: ID!) { cancelBulkJob(id: $id) { id } }", id="f" * 32
    )
    assert canceled["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert canceled["errors"][0]["message"].replace(job["id"], "X") == missing["errors"][0][
        "message"
    ].replace("f" * 32, "X")
    watched = await client.post(
        "/graphql",
        json={"query": PROGRESS, "variables": {"id": job["id"]}},
        headers={"Accept": "text/event-stream", **bearer(other)},
    )
    errors = next(d for e, d in sse_events(watched.text) if e == "next")["errors"]
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"
    seen = (await graphql(client, admin, JOB, id=job["id"]))["data"]["bulkJob"]
    assert seen["id"] == job["id"]
    everyone = await graphql(client, admin, "{ bulkJobs(first: 100) { id } }")
    assert job["id"] in [j["id"] for j in everyone["data"]["bulkJobs"]]


async def test_a_read_key_gets_forbidden_naming_bulk_everywhere(client, engine):
    key = await new_key(engine, "read", "write")
    submitted = (await submit(client, key, bakeries_jsonl(1))).json()
    assert submitted["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert submitted["errors"][0]["extensions"]["missingScopes"] == ["bulk"]
    queried = await graphql(client, key, JOB, id="0" * 32)
    assert queried["errors"][0]["extensions"]["missingScopes"] == ["bulk"]
    watched = await client.post(
        "/graphql",
        json={"query": PROGRESS, "variables": {"id": "0" * 32}},
        headers={"Accept": "text/event-stream", **bearer(key)},
    )
    assert watched.status_code == 403
    assert watched.json()["errors"][0]["extensions"]["missingScopes"] == ["bulk"]


async def test_a_file_over_the_jobs_limit_is_refused_naming_the_setting(app_client, engine):
    async with app_client(jobs_max_file_bytes=64) as client:
        key = await new_key(engine, "read", "bulk")
        response = await submit(client, key, bakeries_jsonl(10))
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "FILE_TOO_LARGE"
    assert error["extensions"]["setting"] == "BATCHERY_JOBS_MAX_FILE_BYTES"
    assert "BATCHERY_JOBS_MAX_FILE_BYTES" in error["message"]


async def test_an_atomic_job_over_its_limit_is_refused_naming_the_setting(app_client, engine):
    async with app_client(jobs_max_atomic_records=2) as client:
        key = await new_key(engine, "read", "bulk")
        response = await submit(client, key, bakeries_jsonl(3), options={"atomic": True})
    error = response.json()["errors"][0]
    assert error["extensions"]["setting"] == "BATCHERY_JOBS_MAX_ATOMIC_RECORDS"


async def test_cancel_of_a_finished_job_returns_it_as_it_is(client, engine):
    key = await new_key(engine, "read", "bulk")
    job = (await submit(client, key, bakeries_jsonl(1))).json()["data"]["submitBulkJob"]
    await progress(client, key, job["id"])
    canceled = await graphql(
        client, key, "mutation($id: ID!) { cancelBulkJob(id: $id) { status } }", id=job["id"]
    )
    assert canceled["data"]["cancelBulkJob"]["status"] == "COMPLETED"


async def test_a_retried_submit_with_its_idempotency_key_gets_the_same_job(client, engine):
    key = await new_key(engine, "read", "bulk")
    once = {"Idempotency-Key": "graphql-jobs-retry-1"}
    content = bakeries_jsonl(4)
    first = (await submit(client, key, content, extra=once)).json()
    retry = (await submit(client, key, content, extra=once)).json()
    job = first["data"]["submitBulkJob"]
    assert retry["data"]["submitBulkJob"]["id"] == job["id"]
    listed = await graphql(client, key, "{ bulkJobs(first: 50) { id } }")
    assert [j["id"] for j in listed["data"]["bulkJobs"]] == [job["id"]]

    reused = (await submit(client, key, bakeries_jsonl(5), extra=once)).json()
    assert reused["data"] is None
    (error,) = reused["errors"]
    assert error["extensions"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert "Idempotency-Key" in error["message"]
    listed = await graphql(client, key, "{ bulkJobs(first: 50) { id } }")
    assert len(listed["data"]["bulkJobs"]) == 1
    assert (await progress(client, key, job["id"]))[-1]["status"] == "COMPLETED"
