"""Variable batching: `variables` as a list runs the operation once per set, through the request's
shared loaders (counted in SQL statements), answered in order with the draft appendix's index
fields; every batch rule (limits, cost, mutations, failures kept to their entry) holds per set."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from app.db.statements import count_statements
from app.main import create_app
from schema.execution import Executor
from tests.app.http import forms
from tests.helpers import without_cost
from tests.images import png

ORDERS = "query($id: ID!) { bakery(id: $id) { id orders(limitTo: 2) { id } } }"
ADD = 'mutation($d: Int!) { addMoney(orderId: "1", dollarsToAdd: $d) { currentTotal } }'


@pytest_asyncio.fixture
async def read_client(read_engine, settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app on the shared 50-bakery database (read only)."""
    app = create_app(settings, engine=read_engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            c.app = app  # type: ignore[attr-defined]
            yield c


def code_of(entry: dict) -> str | None:
    return entry.get("errors", [{}])[0].get("extensions", {}).get("code")


async def test_fifty_variable_sets_cost_the_statements_of_one(read_client, read_engine):
    with count_statements(read_engine) as one:
        single = await read_client.post(
            "/graphql", json={"query": ORDERS, "variables": {"id": "7"}}
        )
    sets = [{"id": str(i)} for i in range(1, 51)]
    with count_statements(read_engine) as fifty:
        response = await read_client.post("/graphql", json={"query": ORDERS, "variables": sets})
    assert single.status_code == response.status_code == 200
    assert one.count == 2  # the bakery, its orders
    assert fifty.count == one.count
    body = without_cost(response.json())
    assert [entry["variableIndex"] for entry in body] == list(range(50))
    assert [entry["data"]["bakery"]["id"] for entry in body] == [s["id"] for s in sets]
    assert all(len(entry["data"]["bakery"]["orders"]) == 2 for entry in body)
    assert body[6]["data"] == without_cost(single.json())["data"]


async def test_the_document_is_parsed_and_validated_once_for_all_sets(read_client, monkeypatch):
    executor: Executor = read_client.app.state.executor
    prepared: list[str] = []
    original = executor._prepare

    def counting(query: str):
        prepared.append(query)
        return original(query)

    monkeypatch.setattr(executor, "_prepare", counting)
    query = ORDERS.replace("limitTo: 2", "limitTo: 1")  # not cached by another test
    sets = [{"id": str(i)} for i in range(1, 21)]
    response = await read_client.post("/graphql", json={"query": query, "variables": sets})
    assert len(response.json()) == 20
    assert prepared == [query]


async def test_one_bad_variable_set_fails_alone(client):
    sets = [{"id": "1"}, {"id": None}, {}, {"id": "2"}]
    response = await client.post("/graphql", json={"query": ORDERS, "variables": sets})
    assert response.status_code == 200
    body = response.json()
    assert [entry["variableIndex"] for entry in body] == [0, 1, 2, 3]
    assert [code_of(entry) for entry in body] == [None, "BAD_USER_INPUT", "BAD_USER_INPUT", None]
    assert body[0]["data"]["bakery"]["id"] == "1"
    assert body[3]["data"]["bakery"]["id"] == "2"
    assert all("data" not in entry for entry in body[1:3])


async def test_a_list_holding_no_object_is_a_malformed_request(client):
    sets = [{"id": "1"}, "nope"]
    alone = await client.post("/graphql", json={"query": ORDERS, "variables": sets})
    assert alone.status_code == 400
    [error] = alone.json()["errors"]
    assert error["message"].startswith("Variable set 1 is a string")
    batch = [{"query": ORDERS, "variables": sets}, {"query": ORDERS, "variables": [{"id": "3"}]}]
    body = (await client.post("/graphql", json=batch)).json()
    assert [(e.get("requestIndex"), e.get("variableIndex")) for e in body] == [(0, None), (1, 0)]
    assert code_of(body[0]) == "BAD_REQUEST"
    assert body[1]["data"]["bakery"]["id"] == "3"


async def test_variable_batches_mix_with_an_operation_batch(client):
    batch = [
        {"query": "{ products { name } }"},
        {"query": ORDERS, "variables": [{"id": "3"}, {"id": "4"}]},
        {"query": ORDERS, "variables": {"id": "5"}},
        {"query": ORDERS, "variables": []},
    ]
    response = await client.post("/graphql", json=batch)
    assert response.status_code == 200
    body = without_cost(response.json())
    assert [(e.get("requestIndex"), e.get("variableIndex")) for e in body] == [
        (0, None),
        (1, 0),
        (1, 1),
        (2, None),
        (3, None),
    ]
    assert [e["data"]["bakery"]["id"] for e in body[1:4]] == ["3", "4", "5"]
    assert "empty list" in body[4]["errors"][0]["message"]


async def test_a_plain_batch_keeps_its_bare_array(client):
    batch = [{"query": ORDERS, "variables": {"id": "1"}}, {"query": "{ products { name } }"}]
    body = (await client.post("/graphql", json=batch)).json()
    assert all("requestIndex" not in entry and "variableIndex" not in entry for entry in body)


async def test_variable_sets_count_against_the_batch_limit(app_client):
    async with app_client(max_batch_operations=3) as client:
        at = await client.post("/graphql", json={"query": ORDERS, "variables": [{"id": "1"}] * 3})
        one_object = await client.post(
            "/graphql", json={"query": ORDERS, "variables": [{"id": "1"}] * 4}
        )
        array = await client.post(
            "/graphql",
            json=[{"query": ORDERS, "variables": [{"id": "1"}, {"id": "2"}]}] * 2,
        )
    assert at.status_code == 200 and len(at.json()) == 3
    for refused in (one_object, array):
        assert refused.status_code == 413
        [error] = refused.json()["errors"]
        assert "4 operations" in error["message"] and "variable set" in error["message"]
        assert error["extensions"] == {
            "code": "TOO_MANY_OPERATIONS",
            "limit": 3,
            "setting": "BATCHERY_MAX_BATCH_OPERATIONS",
        }


async def test_the_request_cost_is_the_sum_over_variable_sets(app_client, engine):
    one = await _cost_of(app_client, {"query": ORDERS, "variables": {"id": "1"}})
    async with app_client(max_request_cost=3 * one) as client:
        with count_statements(engine) as log:
            over = await client.post(
                "/graphql", json={"query": ORDERS, "variables": [{"id": "1"}] * 4}
            )
        at = await client.post("/graphql", json={"query": ORDERS, "variables": [{"id": "1"}] * 3})
    assert over.status_code == 422
    [error] = over.json()["errors"]
    assert error["extensions"]["code"] == "COST_LIMIT_EXCEEDED"
    assert error["extensions"]["requestedQueryCost"] == 4 * one
    assert error["extensions"]["setting"] == "BATCHERY_MAX_REQUEST_COST"
    assert log.count == 0
    assert at.status_code == 200


async def _cost_of(app_client, operation: dict) -> int:
    async with app_client() as client:
        response = await client.post(
            "/graphql", json=operation, headers={"GraphQL-Cost": "validate"}
        )
    return int(response.json()["extensions"]["cost"]["requestedQueryCost"])


async def test_serial_mutations_of_a_variable_batch_run_in_the_order_of_the_sets(
    app_client, engine
):
    async with app_client(batch_mutations="serial") as client:
        before = (
            await client.post("/graphql", json={"query": '{ cakeOrder(id: "1") { currentTotal } }'})
        ).json()
        response = await client.post(
            "/graphql", json={"query": ADD, "variables": [{"d": 5}, {"d": 7}, {"d": 11}]}
        )
    start = before["data"]["cakeOrder"]["currentTotal"]
    totals = [entry["data"]["addMoney"]["currentTotal"] for entry in response.json()]
    assert totals == [start + 5, start + 12, start + 23]


async def test_a_variable_batch_is_refused_over_get(client):
    response = await client.get("/graphql", params={"query": ORDERS, "variables": '[{"id": "1"}]'})
    assert response.status_code == 400
    assert "POST" in response.json()["errors"][0]["message"]


async def test_a_multipart_variable_batch_binds_each_set_its_file(client):
    query = 'mutation($f: Upload!) { uploadOrderPhoto(orderId: "1", file: $f) { size } }'
    operations = {"query": query, "variables": [{"f": None}, {"f": None}]}
    small, large = png(b"a"), png(b"b" * 10)
    response = await client.post(
        "/graphql",
        headers=forms.headers(),
        content=forms.body(
            forms.field("operations", operations),
            forms.field("map", {"a": ["variables.0.f"], "b": ["variables.1.f"]}),
            forms.file("a", small, "a.png", "image/png"),
            forms.file("b", large, "b.png", "image/png"),
        ),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [entry["variableIndex"] for entry in body] == [0, 1]
    sizes = [entry["data"]["uploadOrderPhoto"]["size"] for entry in body]
    assert sizes == [len(small), len(large)]
