"""Bulk jobs over REST: submit (raw body and multipart), read, list, cancel, download, progress
events; ownership, scopes and limits. Jobs run in the test's app (embedded), on its database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.bulk.jobs.model import FileFormat, JobSpec
from app.bulk.model import Operation
from app.db import jobs as rows
from app.db import keys
from app.db.models import Bakery, utcnow
from tests.app.http.forms import BOUNDARY, Part, body
from tests.app.http.jobs_kit import (
    bakeries_jsonl,
    bearer,
    check_progress_order,
    lines_of,
    new_key,
    rest_events,
)

NDJSON = {"Content-Type": "application/x-ndjson"}
CREATE = {"entity": "bakeries", "operation": "CREATE"}


async def bakery_count(engine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(Bakery))).scalar_one())


async def submit_raw(client, key, content: bytes, **params):
    return await client.post(
        "/api/jobs",
        params={**CREATE, **params},
        content=content,
        headers={**NDJSON, **bearer(key)},
    )


async def test_a_raw_ndjson_body_becomes_a_job_that_completes_with_its_counts(client, engine):
    key = await new_key(engine, "bulk")
    before = await bakery_count(engine)
    response = await submit_raw(client, key, bakeries_jsonl(250))
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/api/jobs/{job['id']}"
    assert (job["status"], job["total"], job["entity"], job["operation"]) == (
        "CREATED",
        250,
        "bakeries",
        "CREATE",
    )
    events = await rest_events(client, job["id"], key)
    check_progress_order(events)
    final = events[-1]
    row = (await client.get(f"/api/jobs/{job['id']}", headers=bearer(key))).json()
    assert row["status"] == final["status"] == "COMPLETED"
    assert (
        (row["processed"], row["succeeded"], row["failed"])
        == (
            final["processed"],
            final["succeeded"],
            final["failed"],
        )
        == (250, 250, 0)
    )
    assert await bakery_count(engine) == before + 250


async def test_a_multipart_form_submits_the_same_way(client, engine):
    key = await new_key(engine, "bulk")
    content = bakeries_jsonl(3)
    form = body(
        Part("entity", b"bakeries"),
        Part("operation", b"create"),
        Part("atomic", b"true"),
        Part("file", content, "records.jsonl", "application/octet-stream"),
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **bearer(key)}
    response = await client.post("/api/jobs", content=form, headers=headers)
    assert response.status_code == 202, response.text
    job = response.json()
    assert (job["total"], job["atomic"], job["fileFormat"]) == (3, True, "jsonl")
    events = await rest_events(client, job["id"], key)
    assert events[-1]["status"] == "COMPLETED"


async def test_the_failed_download_holds_exactly_the_failed_lines(client, engine):
    key = await new_key(engine, "bulk")
    bad = frozenset({2, 5, 9})
    content = bakeries_jsonl(10, bad)
    job = (await submit_raw(client, key, content)).json()
    final = (await rest_events(client, job["id"], key))[-1]
    assert (final["succeeded"], final["failed"]) == (7, 3)
    failed = await client.get(f"/api/jobs/{job['id']}/failed", headers=bearer(key))
    assert failed.status_code == 200
    assert failed.content.splitlines() == lines_of(content, bad)
    results = await client.get(f"/api/jobs/{job['id']}/results", headers=bearer(key))
    outcomes = [line for line in results.text.splitlines() if line]
    assert len(outcomes) == 10
    assert [o for o in outcomes if '"success":false' in o.replace(" ", "")] != []
    row = (await client.get(f"/api/jobs/{job['id']}", headers=bearer(key))).json()
    assert row["failedUrl"].endswith(f"/api/jobs/{job['id']}/failed")


async def test_another_key_gets_404_like_a_missing_job_and_an_admin_sees_it(client, engine):
    owner, other, admin = (
        await new_key(engine, "bulk"),
        await new_key(engine, "bulk"),
        await new_key(engine, "bulk", "admin"),
    )
    job = (await submit_raw(client, owner, bakeries_jsonl(2))).json()
    await rest_events(client, job["id"], owner)
    missing = await client.get("/api/jobs/" + "0" * 32, headers=bearer(other))
    for path in ("", "/results", "/failed", "/events"):
        theirs = await client.get(f"/api/jobs/{job['id']}{path}", headers=bearer(other))
        assert theirs.status_code == 404, path
        assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "NOT_FOUND"
    cancel = await client.post(f"/api/jobs/{job['id']}/cancel", headers=bearer(other))
    assert cancel.status_code == 404
    listed = (await client.get("/api/jobs", headers=bearer(other))).json()["jobs"]
    assert job["id"] not in [j["id"] for j in listed]
    seen = await client.get(f"/api/jobs/{job['id']}", headers=bearer(admin))
    assert seen.status_code == 200
    everyone = (await client.get("/api/jobs", headers=bearer(admin))).json()["jobs"]
    assert job["id"] in [j["id"] for j in everyone]


async def test_a_read_key_is_refused_naming_the_bulk_scope_and_nothing_is_made(client, engine):
    key = await new_key(engine, "read", "write")
    response = await submit_raw(client, key, bakeries_jsonl(2))
    assert response.status_code == 403
    assert response.headers["x-missing-scope"] == "bulk"
    assert "'bulk'" in response.json()["error"]["message"]
    assert await rows.list_jobs(engine, owner=None, status=None, first=10) == []


async def test_a_file_over_the_limit_is_413_naming_the_setting(app_client, engine):
    async with app_client(jobs_max_file_bytes=100) as client:
        key = await new_key(engine, "bulk")
        response = await submit_raw(client, key, bakeries_jsonl(20))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "FILE_TOO_LARGE"
    assert "BATCHERY_JOBS_MAX_FILE_BYTES" in response.json()["error"]["message"]
    assert await rows.list_jobs(engine, owner=None, status=None, first=10) == []


async def test_too_many_records_is_413_naming_the_setting(app_client, engine):
    async with app_client(jobs_max_records=5) as client:
        key = await new_key(engine, "bulk")
        response = await submit_raw(client, key, bakeries_jsonl(6))
    assert response.status_code == 413
    assert "BATCHERY_JOBS_MAX_RECORDS" in response.json()["error"]["message"]


async def test_more_active_jobs_than_allowed_is_429_naming_the_setting(app_client, engine):
    created = await keys.create_key(engine, "busy", ["bulk"])
    # A job of this caller that another worker holds for the next hour: active, and made before
    # the app starts, so its embedded reaper cannot claim it (a job nobody held, it could, and
    # run it to its end before the submission below was counted).
    spec = JobSpec("bakeries", Operation.CREATE, FileFormat.JSONL)
    owner = f"key:{created.info.id}"
    job = await rows.create_job(engine, spec, owner, 1, utcnow() + timedelta(hours=1))
    assert await rows.claim_job(engine, "another-worker", 3600, job.id) is not None
    async with app_client(jobs_max_active_per_client=1) as client:
        response = await submit_raw(client, created.key, bakeries_jsonl(1))
    assert response.status_code == 429, response.text
    assert "BATCHERY_JOBS_MAX_ACTIVE_PER_CLIENT" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("params", "content_type", "field"),
    [
        ({"entity": "pies", "operation": "CREATE"}, "application/x-ndjson", "entity"),
        ({"entity": "bakeries", "operation": "MERGE"}, "application/x-ndjson", "operation"),
        ({**CREATE, "atomic": "maybe"}, "application/x-ndjson", "atomic"),
    ],
)
async def test_bad_parameters_are_400_naming_the_field(client, engine, params, content_type, field):
    key = await new_key(engine, "bulk")
    response = await client.post(
        "/api/jobs",
        params=params,
        content=b"{}\n",
        headers={"Content-Type": content_type, **bearer(key)},
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


async def test_an_unsupported_body_is_415(client, engine):
    key = await new_key(engine, "bulk")
    response = await client.post(
        "/api/jobs", params=CREATE, json={"records": []}, headers=bearer(key)
    )
    assert response.status_code == 415


async def test_submissions_are_in_the_audit_trail_with_the_job_id(client, engine):
    from app.db.audit import newest

    key = await new_key(engine, "bulk")
    job = (await submit_raw(client, key, bakeries_jsonl(2))).json()
    await rest_events(client, job["id"], key)
    entries = [record.entry for record in await newest(engine, 20)]
    mine = [e for e in entries if e.action == f"submit bulk job {job['id']}"]
    assert len(mine) == 1
    assert mine[0].caller == job["owner"]
    assert mine[0].transport == "rest"
    assert mine[0].detail.startswith("bakeries CREATE 2 records")


async def test_cancel_of_a_job_not_started_cancels_it_and_its_events_end_there(client, engine):
    created = await keys.create_key(engine, "canceler", ["bulk"])
    spec = JobSpec("bakeries", Operation.CREATE, FileFormat.JSONL)
    # Made here and never enqueued: no worker takes it, so it is CREATED until canceled.
    job = await rows.create_job(
        engine, spec, f"key:{created.info.id}", 7, utcnow() + timedelta(hours=1)
    )
    response = await client.post(f"/api/jobs/{job.id}/cancel", headers=bearer(created.key))
    assert response.status_code == 200
    assert response.json()["status"] == "CANCELED"
    stored = await rows.get_job(engine, job.id)
    assert stored is not None and stored.status.value == "CANCELED"
    events = await rest_events(client, job.id, created.key)
    assert events[-1]["final"] is True
    assert (events[-1]["status"], events[-1]["processed"]) == ("CANCELED", 0)
    assert response.json()["unprocessedUrl"].endswith(f"/api/jobs/{job.id}/unprocessed")


async def test_a_download_of_a_file_that_is_not_there_yet_says_why(client, engine):
    created = await keys.create_key(engine, "early", ["bulk"])
    spec = JobSpec("bakeries", Operation.CREATE, FileFormat.CSV)
    job = await rows.create_job(
        engine, spec, f"key:{created.info.id}", 3, utcnow() + timedelta(hours=1)
    )
    response = await client.get(f"/api/jobs/{job.id}/failed", headers=bearer(created.key))
    assert response.status_code == 404
    assert "CREATED, 0 of 3 records processed" in response.json()["error"]["message"]
    unknown = await client.get(f"/api/jobs/{job.id}/input", headers=bearer(created.key))
    assert unknown.status_code == 404
    assert "results, failed, unprocessed" in unknown.json()["error"]["message"]


async def count_jobs(engine) -> int:
    async with engine.connect() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(rows.jobs_table))).scalar_one()
        )


async def test_a_retried_submission_with_its_idempotency_key_gets_the_same_job(client, engine):
    key = await new_key(engine, "bulk")
    once = {"Idempotency-Key": "jobs-retry-1"}
    content = bakeries_jsonl(5)
    before = await count_jobs(engine)
    jobs_dir = client.app.state.jobs.config.jobs_dir  # type: ignore[attr-defined]
    dirs_before = len(list(jobs_dir.iterdir())) if jobs_dir.exists() else 0
    first = await client.post(
        "/api/jobs", params=CREATE, content=content, headers={**NDJSON, **bearer(key), **once}
    )
    assert first.status_code == 202, first.text
    retry = await client.post(
        "/api/jobs", params=CREATE, content=content, headers={**NDJSON, **bearer(key), **once}
    )
    assert retry.status_code == 202, retry.text
    assert retry.json()["id"] == first.json()["id"]
    assert retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await count_jobs(engine) == before + 1
    # Only the job's own directory was kept: the retry's copy of the file is gone.
    assert len(list(jobs_dir.iterdir())) == dirs_before + 1

    # The same key with another file, or other fields: 422 naming the conflict, nothing made.
    for params, other in ((CREATE, bakeries_jsonl(6)), ({**CREATE, "atomic": "true"}, content)):
        reused = await client.post(
            "/api/jobs", params=params, content=other, headers={**NDJSON, **bearer(key), **once}
        )
        assert reused.status_code == 422, reused.text
        assert reused.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
        assert "Idempotency-Key" in reused.json()["error"]["message"]
    assert await count_jobs(engine) == before + 1
    # Another key's same Idempotency-Key is its own.
    other_key = await new_key(engine, "bulk")
    theirs = await client.post(
        "/api/jobs", params=CREATE, content=content, headers={**NDJSON, **bearer(other_key), **once}
    )
    assert theirs.status_code == 202 and theirs.json()["id"] != first.json()["id"]
    for job_id, owner in ((first.json()["id"], key), (theirs.json()["id"], other_key)):
        assert (await rest_events(client, job_id, owner))[-1]["status"] == "COMPLETED"
    # One audit entry per job made, none for the replay.
    from app.db.audit import newest

    entries = [r.entry for r in await newest(engine, 50)]
    assert [e.action for e in entries].count(f"submit bulk job {first.json()['id']}") == 1
