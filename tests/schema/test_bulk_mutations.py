"""The bulk mutations through GraphQL, each outcome read back from the database."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from app.settings import Settings
from schema.context import Context
from tests import dbstate
from tests.helpers import run

BATCH_BAKERIES = """
mutation($request: BakeryBatchRequest!) {
  batchBakeries(request: $request) {
    success operation total succeeded failed
    error { code message }
    meta { batchId durationMs validateOnly atomic }
    results { index id success created errors { code message field } data { id name region } }
  }
}
"""

BATCH_ORDERS = """
mutation($request: CakeOrderBatchRequest!) {
  batchCakeOrders(request: $request) {
    success total succeeded failed
    error { code }
    results {
      index id success created errors { code field }
      data { id writtenPhrase bakery { id } }
    }
  }
}
"""

DELETE_MANY = """
mutation($ids: [ID!]!, $options: BatchOptions) {
  deleteManyBakeries(ids: $ids, options: $options) {
    success total succeeded error { code }
    results { index id success errors { code } data { id name } }
  }
}
"""


def bakeries(n: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {"data": {"name": f"{prefix} {i}", "region": "NORTH_WEST", "externalId": f"{prefix}-{i}"}}
        for i in range(n)
    ]


def error_codes(result: dict[str, Any]) -> list[str]:
    return [error["code"] for error in result["errors"]]


async def test_atomic_with_one_bad_record_among_ten_writes_nothing(engine):
    before = await dbstate.snapshot(engine)
    records = bakeries(10, "GA")
    records[4]["data"]["name"] = "   "
    outcome = await run(
        engine,
        BATCH_BAKERIES,
        {"request": {"operation": "CREATE", "records": records, "options": {"atomic": True}}},
    )
    assert outcome.errors == []
    batch = outcome.data["batchBakeries"]
    assert (batch["success"], batch["total"], batch["succeeded"], batch["failed"]) == (
        False,
        10,
        0,
        10,
    )
    assert batch["meta"]["atomic"] is True and batch["operation"] == "CREATE"
    assert [r["index"] for r in batch["results"]] == list(range(10))
    assert batch["results"][4]["errors"] == [
        {"code": "INVALID_VALUE", "message": "name must not be empty", "field": "data.name"}
    ]
    others = [r for r in batch["results"] if r["index"] != 4]
    assert all(error_codes(r) == ["ALL_OR_NONE_ROLLED_BACK"] for r in others)
    assert await dbstate.snapshot(engine) == before


async def test_continue_on_error_writes_the_valid_orders(engine):
    records = [
        {"data": {"bakeryId": "1", "writtenPhrase": "Valid A", "externalId": "GO-A"}},
        {"data": {"bakeryId": "999", "writtenPhrase": "No bakery", "externalId": "GO-B"}},
        {"data": {"bakeryId": "2", "writtenPhrase": "Valid C", "currentTotal": 12}},
        {"data": {"bakeryId": "2", "writtenPhrase": "Negative", "currentTotal": -1}},
    ]
    outcome = await run(
        engine,
        BATCH_ORDERS,
        {
            "request": {
                "operation": "CREATE",
                "records": records,
                "options": {"atomic": False, "continueOnError": True, "returnRecords": True},
            }
        },
    )
    batch = outcome.data["batchCakeOrders"]
    assert [r["success"] for r in batch["results"]] == [True, False, True, False]
    assert batch["results"][1]["errors"] == [
        {"code": "REFERENCE_NOT_FOUND", "field": "data.bakeryId"}
    ]
    assert batch["results"][3]["errors"] == [
        {"code": "INVALID_VALUE", "field": "data.currentTotal"}
    ]
    assert batch["results"][0]["data"]["bakery"] == {"id": "1"}
    assert (await dbstate.order_by_key(engine, "GO-A")).written_phrase == "Valid A"
    assert await dbstate.order_by_key(engine, "GO-B") is None
    async with engine.connect() as conn:
        from sqlalchemy import select

        from app.db.reads import orders

        phrases = (
            await conn.execute(
                select(orders.c.written_phrase).where(
                    orders.c.written_phrase.in_(["Valid C", "Negative"])
                )
            )
        ).scalars()
        assert list(phrases) == ["Valid C"]


async def test_stop_on_first_failure_leaves_later_records_unwritten(engine):
    records = bakeries(5, "GS")
    records[1]["data"]["region"] = None
    outcome = await run(
        engine,
        BATCH_BAKERIES,
        {
            "request": {
                "operation": "CREATE",
                "records": records,
                "options": {"continueOnError": False},
            }
        },
    )
    results = outcome.data["batchBakeries"]["results"]
    assert [error_codes(r) for r in results] == [
        [],
        ["REQUIRED"],
        ["NOT_PROCESSED"],
        ["NOT_PROCESSED"],
        ["NOT_PROCESSED"],
    ]
    assert results[0]["id"] is not None
    assert (await dbstate.bakery_by_key(engine, "GS-0")).id == int(results[0]["id"])
    for i in range(1, 5):
        assert await dbstate.bakery_by_key(engine, f"GS-{i}") is None


async def test_validate_only_reports_duplicate_key_and_bad_reference_and_writes_nothing(engine):
    before = await dbstate.snapshot(engine)
    records = [
        {"data": {"bakeryId": "1", "writtenPhrase": "ok", "externalId": "ORD-000002"}},
        {"data": {"bakeryId": "4242", "writtenPhrase": "ok"}},
        {"data": {"bakeryId": "3", "writtenPhrase": "would work"}},
    ]
    outcome = await run(
        engine,
        BATCH_ORDERS,
        {"request": {"operation": "CREATE", "records": records, "options": {"validateOnly": True}}},
    )
    results = outcome.data["batchCakeOrders"]["results"]
    assert results[0]["errors"] == [{"code": "DUPLICATE", "field": "data.externalId"}]
    assert results[1]["errors"] == [{"code": "REFERENCE_NOT_FOUND", "field": "data.bakeryId"}]
    assert results[2]["success"] is True and results[2]["id"] is None
    assert await dbstate.snapshot(engine) == before


async def test_upsert_says_which_records_were_created(engine):
    records = [
        {"externalId": "BKR-0003", "data": {"name": "Upserted"}},
        {"externalId": "GU-NEW", "data": {"name": "Fresh", "region": "CENTRAL"}},
    ]
    outcome = await run(
        engine,
        BATCH_BAKERIES,
        {
            "request": {
                "operation": "UPSERT",
                "records": records,
                "options": {"returnRecords": True},
            }
        },
    )
    existing, fresh = outcome.data["batchBakeries"]["results"]
    assert (existing["created"], existing["id"]) == (False, "3")
    assert existing["data"] == {"id": "3", "name": "Upserted", "region": "SOUTH_EAST"}
    assert fresh["created"] is True
    assert (await dbstate.bakery(engine, 3)).name == "Upserted"
    assert (await dbstate.bakery_by_key(engine, "GU-NEW")).id == int(fresh["id"])


async def test_duplicate_ids_are_refused_before_writing(engine):
    before = await dbstate.snapshot(engine)
    outcome = await run(
        engine,
        BATCH_BAKERIES,
        {
            "request": {
                "operation": "DELETE",
                "records": [{"id": "5"}, {"id": "5"}],
                "options": {"atomic": True},
            }
        },
    )
    results = outcome.data["batchBakeries"]["results"]
    assert [error_codes(r) for r in results] == [["ALL_OR_NONE_ROLLED_BACK"], ["DUPLICATE"]]
    assert await dbstate.snapshot(engine) == before


async def test_201_records_are_refused_whole(engine):
    before = await dbstate.snapshot(engine)
    outcome = await run(
        engine,
        BATCH_BAKERIES,
        {"request": {"operation": "CREATE", "records": bakeries(201, "BIG")}},
    )
    batch = outcome.data["batchBakeries"]
    assert batch["success"] is False
    assert batch["error"]["code"] == "BATCH_TOO_LARGE"
    assert (batch["results"], batch["total"], batch["failed"]) == ([], 201, 201)
    assert await dbstate.snapshot(engine) == before


async def test_delete_many_bakeries(engine):
    outcome = await run(
        engine,
        DELETE_MANY,
        {"ids": ["4", "5", "404"], "options": {"returnRecords": True}},
    )
    batch = outcome.data["deleteManyBakeries"]
    assert [r["success"] for r in batch["results"]] == [True, True, False]
    assert batch["results"][0]["data"]["id"] == "4"
    assert error_codes(batch["results"][2]) == ["NOT_FOUND"]
    assert await dbstate.bakery(engine, 4) is None and await dbstate.bakery(engine, 5) is None


async def test_left_out_options_take_the_server_defaults(engine):
    settings = Settings(bulk_default_atomic=True, bulk_default_return_records=True)
    records = [*bakeries(2, "DEF"), {"data": {"name": "No region"}}]
    outcome = await run(
        engine,
        BATCH_BAKERIES,
        {"request": {"operation": "CREATE", "records": records}},
        settings=settings,
    )
    batch = outcome.data["batchBakeries"]
    assert batch["meta"]["atomic"] is True
    assert batch["succeeded"] == 0
    assert await dbstate.bakery_by_key(engine, "DEF-0") is None
    # Spelled out, an option wins over the server's default.
    outcome = await run(
        engine,
        BATCH_BAKERIES,
        {"request": {"operation": "CREATE", "records": records, "options": {"atomic": False}}},
        settings=settings,
    )
    batch = outcome.data["batchBakeries"]
    assert (batch["meta"]["atomic"], batch["succeeded"]) == (False, 2)
    # The contract's defaults fill an options object; returnRecords is false there.
    assert batch["results"][0]["data"] is None
    assert (await dbstate.bakery_by_key(engine, "DEF-0")).name == "DEF 0"


async def test_disabled_bulk_refuses_with_a_code(engine):
    outcome = await run(
        engine,
        DELETE_MANY,
        {"ids": ["1"]},
        settings=Settings(bulk_enabled=False),
    )
    assert outcome.data["deleteManyBakeries"]["error"] == {"code": "BULK_DISABLED"}
    assert await dbstate.bakery(engine, 1) is not None


# ---- Idempotency-Key ----


def keyed_context(engine: Any, key: str) -> Context:
    # What the HTTP layer does: the request (anything with .headers) on the context.
    request = SimpleNamespace(headers={"Idempotency-Key": key})
    return Context.create(engine, Settings(), request=request)


async def test_same_key_twice_writes_once_and_answers_the_same(engine):
    variables = {"request": {"operation": "CREATE", "records": bakeries(3, "IK")}}
    first = await run(engine, BATCH_BAKERIES, variables, context=keyed_context(engine, "key-1"))
    after_first = await dbstate.count(engine, "bakeries")
    second = await run(engine, BATCH_BAKERIES, variables, context=keyed_context(engine, "key-1"))
    assert first.errors == second.errors == []
    assert second.data == first.data
    assert await dbstate.count(engine, "bakeries") == after_first == 6 + 3
    # The replay ran no INSERT.
    assert not any(s.lstrip().upper().startswith("INSERT INTO BAKERIES") for s in second.sql)


async def test_same_key_with_another_body_is_refused(engine):
    context = keyed_context(engine, "key-2")
    await run(
        engine,
        BATCH_BAKERIES,
        {"request": {"operation": "CREATE", "records": bakeries(1, "IK2")}},
        context=context,
    )
    before = await dbstate.snapshot(engine)
    other = await run(
        engine,
        BATCH_BAKERIES,
        {"request": {"operation": "CREATE", "records": bakeries(2, "IK3")}},
        context=keyed_context(engine, "key-2"),
    )
    assert other.data is None
    assert [e["extensions"]["code"] for e in other.errors] == ["IDEMPOTENCY_KEY_REUSED"]
    assert await dbstate.snapshot(engine) == before


async def test_a_retry_while_the_first_runs_is_refused(engine, monkeypatch):
    from app.bulk import BulkEngine

    variables = {"ids": ["1"]}
    retries: list[Any] = []
    original = BulkEngine.run

    async def retry_meanwhile(self: BulkEngine, *args: Any) -> Any:
        # The first request holds the key and is about to write: the retry arrives now.
        if not retries:
            retries.append(
                await run(engine, DELETE_MANY, variables, context=keyed_context(engine, "key-3"))
            )
        return await original(self, *args)

    monkeypatch.setattr(BulkEngine, "run", retry_meanwhile)
    first = await run(engine, DELETE_MANY, variables, context=keyed_context(engine, "key-3"))
    (retry,) = retries
    assert retry.data is None
    assert [e["extensions"]["code"] for e in retry.errors] == ["IDEMPOTENCY_KEY_IN_PROGRESS"]
    assert first.data["deleteManyBakeries"]["succeeded"] == 1
    assert await dbstate.bakery(engine, 1) is None
    # Once the first is done, a retry gets its answer.
    again = await run(engine, DELETE_MANY, variables, context=keyed_context(engine, "key-3"))
    assert again.data == first.data
    assert len(retries) == 1


async def test_aliases_keep_their_own_keys(engine):
    query = """
    mutation($a: BakeryBatchRequest!, $b: BakeryBatchRequest!) {
      a: batchBakeries(request: $a) { succeeded }
      b: batchBakeries(request: $b) { succeeded }
    }
    """
    variables = {
        "a": {"operation": "CREATE", "records": bakeries(1, "AL-A")},
        "b": {"operation": "CREATE", "records": bakeries(2, "AL-B")},
    }
    for _ in range(2):
        outcome = await run(engine, query, variables, context=keyed_context(engine, "key-4"))
        assert outcome.errors == []
        assert outcome.data == {"a": {"succeeded": 1}, "b": {"succeeded": 2}}
    assert await dbstate.count(engine, "bakeries") == 6 + 3


async def test_idempotency_key_over_http(client, engine):
    body = {"query": DELETE_MANY, "variables": {"ids": ["2"]}}
    headers = {"Idempotency-Key": "http-key"}
    first = await client.post("/graphql", json=body, headers=headers)
    second = await client.post("/graphql", json=body, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json()["data"]["deleteManyBakeries"]["succeeded"] == 1
    # Deleting again would say NOT_FOUND: the same answer proves it was not run twice.
    assert second.json() == first.json()
    other = await client.post(
        "/graphql", json={"query": DELETE_MANY, "variables": {"ids": ["3"]}}, headers=headers
    )
    assert other.json()["errors"][0]["extensions"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await dbstate.bakery(engine, 3) is not None
    bad = await client.post("/graphql", json=body, headers={"Idempotency-Key": "\t"})
    assert bad.json()["errors"][0]["extensions"]["code"] == "INVALID_IDEMPOTENCY_KEY"
