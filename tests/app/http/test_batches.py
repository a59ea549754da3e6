"""JSON-array batches: order, isolation of failures, concurrency, serial mutations, and the
loaders shared by the queries of one request (counted in SQL statements)."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
import strawberry
from sqlalchemy import text

from app.db.statements import count_statements
from schema.execution import Executor
from tests.helpers import without_cost

GQL_RESPONSE = "application/graphql-response+json"


def use_schema(client, schema: strawberry.Schema) -> None:
    """Serve `schema` from this test's app (the transport is what is under test)."""
    app = client.app
    app.state.executor = Executor(schema, app.state.settings)


async def total_of(engine, order_id: int) -> int:
    async with engine.connect() as conn:
        statement = text("SELECT current_total FROM cake_orders WHERE id = :id")
        return int((await conn.execute(statement, {"id": order_id})).scalar_one())


# ---- shape of a batch ----


async def test_a_batch_gets_an_array_of_responses_in_the_order_sent(client):
    batch = [
        {"query": "{ products { name } }"},
        {"query": "query($id: ID!) { bakery(id: $id) { id } }", "variables": {"id": "3"}},
        {"query": '{ bakery(id: "1") { id } }'},
    ]
    response = await client.post("/graphql", json=batch)
    assert response.status_code == 200
    body = response.json()
    assert len(body) == 3
    assert body[0]["data"]["products"][0] == {"name": "Sponge base"}
    assert without_cost(body[1]) == {"data": {"bakery": {"id": "3"}}}
    assert without_cost(body[2]) == {"data": {"bakery": {"id": "1"}}}


@pytest.mark.parametrize("accept", ["application/json", GQL_RESPONSE])
async def test_each_failure_stays_in_its_own_element(client, accept):
    batch = [
        {"query": '{ bakery(id: "2") { id } }'},
        {"query": "{ bakery(id: "},
        {"query": "{ bakery { nope } }"},
        {"variables": {}},
        {"query": "{ products { id } }", "variables": "nope"},
        {"query": "query A { products { id } }", "operationName": "B"},
        {"query": "query($id: ID!) { bakery(id: $id) { id } }", "variables": {}},
        {"query": 'mutation { addMoney(orderId: "999999", dollarsToAdd: 1) { id } }'},
        {"query": '{ bakery(id: "4") { id } }'},
    ]
    response = await client.post("/graphql", json=batch, headers={"Accept": accept})
    assert response.status_code == 200
    body = response.json()
    assert len(body) == len(batch)
    assert without_cost(body[0]) == {"data": {"bakery": {"id": "2"}}}
    codes = [element.get("errors", [{}])[0].get("extensions", {}).get("code") for element in body]
    assert codes == [
        None,
        "GRAPHQL_PARSE_FAILED",
        "GRAPHQL_VALIDATION_FAILED",
        "BAD_REQUEST",
        "BAD_REQUEST",
        "OPERATION_RESOLUTION_FAILURE",
        "BAD_USER_INPUT",
        "NOT_FOUND",
        None,
    ]
    # Request errors never ran: no `data`. The resolver error ran: `data` is there (null).
    assert all("data" not in element for element in body[1:7])
    assert body[7]["data"] is None
    assert without_cost(body[8]) == {"data": {"bakery": {"id": "4"}}}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "The batch is an empty array"),
        (
            [{"query": "{ products { id } }"}, "{ products { id } }"],
            "Element 1 of the batch is a string",
        ),
        ([{"query": "{ products { id } }"}, None], "Element 1 of the batch is null"),
        ([[{"query": "{ products { id } }"}]], "Element 0 of the batch is an array"),
    ],
)
async def test_what_is_not_a_batch_is_refused_whole_with_400(client, payload, message):
    response = await client.post("/graphql", json=payload)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["message"].startswith(message)
    assert error["extensions"]["code"] == "BAD_REQUEST"


async def test_more_operations_than_the_limit_is_413_naming_it(app_client):
    async with app_client(max_batch_operations=3) as client:
        over = await client.post("/graphql", json=[{"query": "{ products { id } }"}] * 4)
        at = await client.post("/graphql", json=[{"query": "{ products { id } }"}] * 3)
    assert over.status_code == 413
    [error] = over.json()["errors"]
    assert (
        "4 operations" in error["message"] and "BATCHERY_MAX_BATCH_OPERATIONS" in error["message"]
    )
    assert error["extensions"] == {
        "code": "TOO_MANY_OPERATIONS",
        "limit": 3,
        "setting": "BATCHERY_MAX_BATCH_OPERATIONS",
    }
    assert at.status_code == 200 and len(at.json()) == 3


async def test_a_one_element_batch_is_still_an_array(client):
    response = await client.post("/graphql", json=[{"query": "{ bakery(id: 1) { id } }"}])
    assert without_cost(response.json()) == [{"data": {"bakery": {"id": "1"}}}]


# ---- concurrency and order ----


def reverse_finishing_schema(finished: list[int]) -> strawberry.Schema:
    """`step(index, count)` finishes only after `step(index + 1)` has: the operations of a batch
    can complete only if they all run at once, and then they complete in reverse order."""
    done: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)

    @strawberry.type
    class Query:
        @strawberry.field
        async def step(self, index: int, count: int) -> int:
            if index + 1 < count:
                # A bound on the wait, so a broken runner fails the test instead of hanging it.
                await asyncio.wait_for(done[index + 1].wait(), timeout=10)
            finished.append(index)
            done[index].set()
            return index

    return strawberry.Schema(query=Query)


async def test_operations_start_together_and_answer_in_input_order_though_finishing_in_reverse(
    client,
):
    finished: list[int] = []
    use_schema(client, reverse_finishing_schema(finished))
    count = 6
    batch = [
        {
            "query": "query($i: Int!, $n: Int!) { step(index: $i, count: $n) }",
            "variables": {"i": i, "n": count},
        }
        for i in range(count)
    ]
    response = await client.post("/graphql", json=batch)
    assert finished == list(reversed(range(count)))
    assert without_cost(response.json()) == [{"data": {"step": i}} for i in range(count)]


def probe_schema(peak: list[int]) -> strawberry.Schema:
    """`probe` counts how many operations are inside it at once."""
    running = [0]

    @strawberry.type
    class Query:
        @strawberry.field
        async def probe(self, n: int) -> int:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            for _ in range(5):  # yield to the loop so the others can come in
                await asyncio.sleep(0)
            running[0] -= 1
            return n

    return strawberry.Schema(query=Query)


@pytest.mark.parametrize(("bound", "expected_peak"), [(0, 6), (2, 2), (1, 1)])
async def test_batch_concurrency_bounds_how_many_run_at_once(app_client, bound, expected_peak):
    peak = [0]
    async with app_client(batch_concurrency=bound) as client:
        use_schema(client, probe_schema(peak))
        batch = [
            {"query": "query($n: Int!) { probe(n: $n) }", "variables": {"n": n}} for n in range(6)
        ]
        response = await client.post("/graphql", json=batch)
    assert without_cost(response.json()) == [{"data": {"probe": n}} for n in range(6)]
    assert peak[0] == expected_peak


def recording_schema(log: list[str]) -> strawberry.Schema:
    @strawberry.type
    class Query:
        ok: bool = True

    @strawberry.type
    class Mutation:
        @strawberry.mutation
        async def record(self, n: int) -> int:
            log.append(f"start {n}")
            for _ in range(3):
                await asyncio.sleep(0)
            log.append(f"end {n}")
            return n

    return strawberry.Schema(query=Query, mutation=Mutation)


RECORD = [
    {"query": "mutation($n: Int!) { record(n: $n) }", "variables": {"n": n}} for n in range(3)
]


async def test_serial_mutations_run_one_after_another_in_the_order_sent(app_client):
    log: list[str] = []
    async with app_client(batch_mutations="serial") as client:
        use_schema(client, recording_schema(log))
        response = await client.post("/graphql", json=RECORD)
    assert without_cost(response.json()) == [{"data": {"record": n}} for n in range(3)]
    assert log == ["start 0", "end 0", "start 1", "end 1", "start 2", "end 2"]


async def test_concurrent_mutations_all_start_before_any_ends(app_client):
    log: list[str] = []
    async with app_client(batch_mutations="concurrent") as client:
        use_schema(client, recording_schema(log))
        response = await client.post("/graphql", json=RECORD)
    assert without_cost(response.json()) == [{"data": {"record": n}} for n in range(3)]
    assert log[:3] == ["start 0", "start 1", "start 2"]


async def test_serial_add_money_shows_the_running_total(app_client, engine):
    before = await total_of(engine, 1)
    add = 'mutation($d: Int!) { addMoney(orderId: "1", dollarsToAdd: $d) { currentTotal } }'
    async with app_client(batch_mutations="serial") as client:
        response = await client.post(
            "/graphql",
            json=[{"query": add, "variables": {"d": d}} for d in (5, 7, 11)],
        )
    totals = [element["data"]["addMoney"]["currentTotal"] for element in response.json()]
    assert totals == [before + 5, before + 12, before + 23]
    assert await total_of(engine, 1) == before + 23


async def test_concurrent_add_money_loses_no_update(client, engine):
    before = await total_of(engine, 2)
    add = 'mutation { addMoney(orderId: "2", dollarsToAdd: 3) { currentTotal } }'
    response = await client.post("/graphql", json=[{"query": add}] * 10)
    totals = sorted(element["data"]["addMoney"]["currentTotal"] for element in response.json())
    assert totals == [before + 3 * k for k in range(1, 11)]
    assert await total_of(engine, 2) == before + 30


# ---- loaders shared by the queries of a request ----

NESTED = """
query($id: ID!) {
  bakery(id: $id) {
    name
    orders(limitTo: 3) { id writtenPhrase bakery { name } }
    manager { firstName }
    suppliers { name }
  }
}
"""


async def statements_for(client, engine, batch: list[dict]) -> tuple[int, list]:
    with count_statements(engine) as log:
        response = await client.post("/graphql", json=batch)
    assert response.status_code == 200
    body = response.json()
    assert all("errors" not in element for element in body), body
    return log.count, body


async def test_k_nested_queries_on_different_rows_cost_the_statements_of_one(client, engine):
    one, _ = await statements_for(client, engine, [{"query": NESTED, "variables": {"id": "1"}}])
    six, body = await statements_for(
        client, engine, [{"query": NESTED, "variables": {"id": str(i)}} for i in range(1, 7)]
    )
    assert one == 5  # bakery, orders, orders' bakery, manager, suppliers
    assert six == one
    assert [element["data"]["bakery"]["orders"][0]["bakery"]["name"] for element in body] == [
        element["data"]["bakery"]["name"] for element in body
    ]


async def test_k_identical_nested_queries_cost_the_statements_of_one(client, engine):
    query = "{ bakeries(first: 4) { name orders(limitTo: 2) { id } manager { lastName } } }"
    one, [single] = await statements_for(client, engine, [{"query": query}])
    ten, body = await statements_for(client, engine, [{"query": query}] * 10)
    assert one == 3
    assert ten == one
    assert body == [single] * 10


async def test_a_mutation_batched_with_a_query_of_the_same_rows_returns_fresh_data(client, engine):
    bakery_orders = '{ bakery(id: "1") { orders(limitTo: 5) { id currentTotal } } }'
    newest = (await client.post("/graphql", json={"query": bakery_orders})).json()
    order_id = newest["data"]["bakery"]["orders"][0]["id"]
    before = await total_of(engine, int(order_id))
    mutation = (
        "mutation($id: ID!) { addMoney(orderId: $id, dollarsToAdd: 50) "
        "{ currentTotal bakery { orders(limitTo: 5) { id currentTotal } } } }"
    )
    response = await client.post(
        "/graphql",
        json=[
            {"query": bakery_orders},
            {"query": mutation, "variables": {"id": order_id}},
        ],
    )
    _, changed = response.json()
    nested = {o["id"]: o["currentTotal"] for o in changed["data"]["addMoney"]["bakery"]["orders"]}
    assert changed["data"]["addMoney"]["currentTotal"] == before + 50
    assert nested[order_id] == before + 50
    assert await total_of(engine, int(order_id)) == before + 50


@pytest.mark.parametrize("mode", ["concurrent", "serial"])
async def test_mutations_are_isolated_from_each_other_loaders(app_client, engine, mode):
    """Two mutations on orders of the same bakery: each reads the bakery's orders after its own
    write, never from the other's cache."""
    async with app_client(batch_mutations=mode) as client:
        mutation = (
            "mutation($id: ID!) { addMoney(orderId: $id, dollarsToAdd: 1) "
            "{ id currentTotal bakery { orders(limitTo: 50) { id currentTotal } } } }"
        )
        response = await client.post(
            "/graphql",
            json=[{"query": mutation, "variables": {"id": i}} for i in ("1", "1")],
        )
    for element in response.json():
        changed = element["data"]["addMoney"]
        seen = {o["id"]: o["currentTotal"] for o in changed["bakery"]["orders"]}
        assert seen["1"] >= changed["currentTotal"]
    totals = sorted(e["data"]["addMoney"]["currentTotal"] for e in response.json())
    assert totals[1] == totals[0] + 1
