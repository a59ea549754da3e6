"""The application as a whole: probes, metrics, GraphiQL, a plain GraphQL POST."""

from __future__ import annotations

import re

from sqlalchemy import text

from app.http import graphiql
from tests.helpers import without_cost

SEED_QUERY = "{ bakeries(region: SOUTH_WEST) { name orders(limitTo: 50) { id writtenPhrase } } }"


def statements_total(metrics_text: str) -> float:
    match = re.search(r"^batchery_db_statements_total (\S+)$", metrics_text, re.M)
    assert match, metrics_text
    return float(match.group(1))


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_the_database(client):
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


async def test_readyz_is_503_when_the_database_is_unreachable(client):
    from app.db.engine import create_engine

    app = client.app
    serving = app.state.engine
    # Nothing listens on port 1: connecting is refused, as when the database server is down.
    app.state.engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    try:
        response = await client.get("/readyz")
    finally:
        await app.state.engine.dispose()
        app.state.engine = serving
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert (await client.get("/readyz")).status_code == 200


async def test_metrics_count_the_statements_of_the_seed_query(client):
    before = statements_total((await client.get("/metrics")).text)
    response = await client.post("/graphql", json={"query": SEED_QUERY})
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body
    assert body["data"]["bakeries"]
    after = statements_total((await client.get("/metrics")).text)
    assert after - before == 2


async def test_graphiql_page_is_served_to_browsers(client):
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    if graphiql.assets_present():
        assert 'src="/graphiql-static/graphiql.min.js"' in response.text
        assert "unpkg.com" not in response.text and "cdn" not in response.text.lower()
        asset = await client.get("/graphiql-static/graphiql.min.js")
        assert asset.status_code == 200
        assert len(asset.content) > 100_000
    else:
        assert "make graphiql" in response.text


async def test_post_json_runs_a_mutation_and_changes_the_row(client, engine):
    async with engine.connect() as conn:
        before = (
            await conn.execute(text("SELECT current_total FROM cake_orders WHERE id = 1"))
        ).scalar_one()
    response = await client.post(
        "/graphql",
        json={
            "query": "mutation($id: ID!) "
            "{ addMoney(orderId: $id, dollarsToAdd: 7) { currentTotal } }",
            "variables": {"id": "1"},
        },
    )
    assert without_cost(response.json()) == {"data": {"addMoney": {"currentTotal": before + 7}}}
    async with engine.connect() as conn:
        after = (
            await conn.execute(text("SELECT current_total FROM cake_orders WHERE id = 1"))
        ).scalar_one()
    assert after == before + 7


async def test_the_bare_address_leads_to_graphql(client):
    response = await client.get("/")
    assert response.status_code == 307
    assert response.headers["location"] == "/graphql"


async def test_jobs_run_in_the_process_and_a_stop_hands_a_running_one_back(app_client, engine):
    """Embedded jobs: the app's lifespan starts them; when it ends (SIGTERM), a job still
    running stops and gives its lease back at once, and the next start resumes and ends it."""
    from app.bulk.jobs.model import FileFormat, JobSpec, JobStatus
    from app.bulk.model import Operation
    from app.db import jobs as rows
    from app.db.models import utcnow

    records = 20_000
    spec = JobSpec("bakeries", Operation.CREATE, FileFormat.JSONL)

    async def lines():
        for start in range(0, records, 1000):
            yield b"".join(
                b'{"name": "Drain %d", "region": "CENTRAL", "externalId": "drain-%d"}\n' % (n, n)
                for n in range(start, start + 1000)
            )

    async with app_client(jobs_lease_seconds=3600, jobs_max_chunk_records=50) as client:
        jobs = client.app.state.jobs
        job = await jobs.submit(spec, lines(), "key:drain")
        async for event in jobs.watch(job.id):
            if event.counts.processed > 0:
                break  # running, committed chunks behind it, many ahead
    handed_back = await rows.get_job(engine, job.id)
    assert handed_back is not None and handed_back.status is JobStatus.RUNNING
    assert 0 < handed_back.counts.processed < records
    # Its hour-long lease ended with the app, not an hour later.
    assert handed_back.lease_expires_at is not None and handed_back.lease_expires_at <= utcnow()

    async with app_client(jobs_lease_seconds=3600) as client:
        final = [event async for event in client.app.state.jobs.watch(job.id)][-1]
    assert final.status is JobStatus.COMPLETED
    assert final.counts.succeeded == records
    async with engine.connect() as conn:
        written = await conn.execute(
            text(
                "SELECT count(*), count(DISTINCT external_id) FROM bakeries "
                "WHERE external_id LIKE 'drain-%'"
            )
        )
        assert tuple(written.one()) == (records, records)
