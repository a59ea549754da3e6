"""The metrics the transport feeds: operations by type and outcome, requests by status,
request durations by route, batch sizes."""

from __future__ import annotations

import re

from tests.app.http.forms import body, field, headers


def sample(metrics_text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    pattern = rf"^{re.escape(name)}{{{re.escape(wanted)}}} (\S+)$" if labels else rf"^{name} (\S+)$"
    match = re.search(pattern, metrics_text, re.M)
    return float(match.group(1)) if match else 0.0


async def test_operations_requests_durations_and_batch_sizes_are_counted(client):
    async def snapshot() -> str:
        return (await client.get("/metrics")).text

    before = await snapshot()
    await client.post(
        "/graphql",
        json=[
            {"query": "{ products { id } }"},
            {"query": "{ products { nope } }"},
            {"query": 'mutation { addMoney(orderId: "1", dollarsToAdd: 1) { id } }'},
            {"query": 'mutation { addMoney(orderId: "999999", dollarsToAdd: 1) { id } }'},
        ],
    )
    await client.post("/graphql", json={"query": "{ products { id } }"})
    await client.post("/graphql", content=b"{", headers={"Content-Type": "application/json"})
    await client.post(
        "/graphql", content=body(field("operations", {})), headers=headers(preflight=False)
    )
    await client.get("/photos/999")
    after = await snapshot()

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    ops = "batchery_graphql_operations_total"
    assert delta(ops, outcome="ok", type="query") == 2
    assert delta(ops, outcome="rejected", type="unknown") == 1
    assert delta(ops, outcome="ok", type="mutation") == 1
    assert delta(ops, outcome="error", type="mutation") == 1
    requests = "batchery_http_requests_total"
    assert delta(requests, status="200") == 3  # two GraphQL posts and the first /metrics
    assert delta(requests, status="400") == 2
    assert delta(requests, status="404") == 1
    durations = "batchery_http_request_duration_seconds_count"
    assert delta(durations, path="/graphql") == 4
    assert delta(durations, path="/photos/{photo_id:int}") == 1
    assert delta("batchery_graphql_batch_size_count") == 2
    assert delta("batchery_graphql_batch_size_sum") == 5
    assert delta("batchery_graphql_batch_size_bucket", le="1.0") == 1


async def test_no_created_timestamp_series(client):
    await client.post("/graphql", json={"query": "{ products { id } }"})
    text = (await client.get("/metrics")).text

    assert "batchery_graphql_operations_total{" in text
    assert not [line for line in text.splitlines() if "_created" in line]


async def test_bulk_jobs_are_counted_by_status_with_their_records_and_the_queue(client):
    from app.bulk.jobs.model import FileFormat, JobSpec
    from app.bulk.model import Operation

    jobs = client.app.state.jobs  # embedded: this process runs them
    spec = JobSpec("bakeries", Operation.CREATE, FileFormat.JSONL)

    async def lines(count: int):
        yield b"".join(
            b'{"name": "M%d", "region": "CENTRAL", "externalId": "metrics-%d"}\n' % (n, n)
            for n in range(count)
        )

    before = (await client.get("/metrics")).text
    job = await jobs.submit(spec, lines(12), "key:metrics")
    async for _ in jobs.watch(job.id):
        pass
    after = (await client.get("/metrics")).text
    records = "batchery_jobs_records_processed_total"
    assert sample(after, records) - sample(before, records) == 12
    completed = 'batchery_jobs{status="COMPLETED"}'
    assert re.search(rf"^{re.escape(completed)} (\S+)$", after, re.M)
    assert sample(after, "batchery_jobs", status="COMPLETED") >= 1
    assert sample(after, "batchery_jobs", status="RUNNING") == 0
    assert sample(after, "batchery_jobs_queue_depth") == 0
    assert "# TYPE batchery_jobs_records_processed_total counter" in after
