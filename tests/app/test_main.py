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
