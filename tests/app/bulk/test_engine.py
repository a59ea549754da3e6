"""The bulk engine keeps every promise of contract/bulk.md; each test reads the database back."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from app.bulk import (
    BAKERIES,
    CAKE_ORDERS,
    BatchOptions,
    BatchRecord,
    BatchRequest,
    BulkEngine,
    Limits,
    Operation,
    OptionOverrides,
)
from app.db.models import Region
from app.db.statements import count_statements
from tests import dbstate


def bakery(name: str, key: str | None = None, region: str = "NORTH_EAST") -> BatchRecord:
    data: dict[str, Any] = {"name": name, "region": region}
    if key is not None:
        data["externalId"] = key
    return BatchRecord(data=data)


def codes(result: Any) -> list[str]:
    return [error.code for error in result.errors]


def request(operation: Operation, records: list[BatchRecord], **options: bool) -> BatchRequest:
    return BatchRequest(operation, records, BatchOptions(**options))


async def test_atomic_batch_with_one_bad_record_writes_nothing(engine):
    before = await dbstate.snapshot(engine)
    records = [bakery(f"Atomic {i}", f"AT-{i}") for i in range(10)]
    records[6] = bakery("", "AT-6")
    response = await BulkEngine(engine).run(
        BAKERIES, request(Operation.CREATE, records, atomic=True)
    )

    assert response.success is False
    assert (response.total, response.succeeded, response.failed) == (10, 0, 10)
    assert [r.index for r in response.results] == list(range(10))
    bad = response.results[6]
    assert codes(bad) == ["INVALID_VALUE"]
    assert bad.errors[0].field == "data.name"
    for result in response.results[:6] + response.results[7:]:
        assert codes(result) == ["ALL_OR_NONE_ROLLED_BACK"]
        assert result.success is False and result.id is None
    assert await dbstate.snapshot(engine) == before


async def test_atomic_batch_rolls_back_a_failure_the_database_finds(engine):
    # A rule the engine's checks do not know: only the database can refuse the 4th record.
    async with engine.begin() as conn:
        await conn.execute(text("CREATE UNIQUE INDEX ix_test_bakery_name ON bakeries (name)"))
    before = await dbstate.snapshot(engine)
    records = [bakery(f"DB rule {i}") for i in range(5)]
    records[3] = bakery(before["bakeries"][0][2])  # the name of an existing bakery
    with count_statements(engine) as log:
        response = await BulkEngine(engine).run(
            BAKERIES, request(Operation.CREATE, records, atomic=True)
        )

    assert codes(response.results[3]) == ["DUPLICATE"]
    assert [codes(r) for i, r in enumerate(response.results) if i != 3] == [
        ["ALL_OR_NONE_ROLLED_BACK"]
    ] * 4
    assert response.succeeded == 0
    assert await dbstate.snapshot(engine) == before
    # The set-based INSERT, then one INSERT per record in its own savepoint.
    assert [s.split()[0] for s in log.statements] == ["INSERT"] * 6


async def test_a_failure_only_the_database_finds_stops_a_non_atomic_batch_at_that_record(engine):
    # atomic=false, continueOnError=false, and a rule the engine's checks do not know (a unique
    # index made here): the set-based INSERT is refused, so the engine writes record by record and
    # must stop at the refused one: the records before it written, it failed, the rest untouched.
    async with engine.begin() as conn:
        await conn.execute(text("CREATE UNIQUE INDEX ix_test_bakery_name ON bakeries (name)"))
    before = await dbstate.snapshot(engine)
    existing_name = before["bakeries"][0][2]
    names = [f"Stop {i}" for i in range(6)]
    names[3] = existing_name
    records = [bakery(name, f"ST-{i}") for i, name in enumerate(names)]
    response = await BulkEngine(engine).run(
        BAKERIES, request(Operation.CREATE, records, atomic=False, continue_on_error=False)
    )

    assert [r.index for r in response.results] == list(range(6))
    assert [r.success for r in response.results] == [True, True, True, False, False, False]
    assert (response.total, response.succeeded, response.failed) == (6, 3, 3)
    refused = response.results[3]
    assert codes(refused) == ["DUPLICATE"] and refused.errors[0].field == "data.name"
    for later in response.results[4:]:
        assert codes(later) == ["NOT_PROCESSED"]
        assert later.errors[0].message == (
            "not processed: the batch stopped at record 3 (continueOnError is false)"
        )
        assert later.id is None
    written = [r.id for r in response.results[:3]]
    assert all(isinstance(pk, int) for pk in written)

    # The database holds exactly the three records before the failure, with the ids reported.
    after = await dbstate.snapshot(engine)
    new_rows = [row for row in after["bakeries"] if row not in before["bakeries"]]
    assert [(row[0], row[2]) for row in new_rows] == list(zip(written, names[:3], strict=True))
    assert await dbstate.bakeries_named(engine, "Stop 4", "Stop 5") == []
    assert {name: rows for name, rows in after.items() if name != "bakeries"} == {
        name: rows for name, rows in before.items() if name != "bakeries"
    }


async def test_non_atomic_continue_on_error_writes_the_valid_records_only(engine):
    records = [
        bakery("Good 0", "CE-0"),
        bakery("Bad region", "CE-1", region="ATLANTIS"),
        bakery("Good 2", "CE-2"),
        BatchRecord(data={"region": "CENTRAL", "externalId": "CE-3"}),  # no name
        bakery("Good 4", "CE-4"),
    ]
    response = await BulkEngine(engine).run(
        BAKERIES, request(Operation.CREATE, records, atomic=False, continue_on_error=True)
    )

    assert (response.total, response.succeeded, response.failed) == (5, 3, 2)
    assert [r.success for r in response.results] == [True, False, True, False, True]
    assert codes(response.results[1]) == ["INVALID_VALUE"]
    assert response.results[1].errors[0].field == "data.region"
    assert codes(response.results[3]) == ["REQUIRED"]
    assert response.results[3].errors[0].field == "data.name"
    for index in (0, 2, 4):
        row = await dbstate.bakery_by_key(engine, f"CE-{index}")
        assert row is not None and row.name == f"Good {index}"
        assert response.results[index].id == row.id
    assert await dbstate.bakery_by_key(engine, "CE-1") is None
    assert await dbstate.bakery_by_key(engine, "CE-3") is None


async def test_stop_on_error_writes_the_records_before_the_failure_only(engine):
    records = [bakery(f"Stop {i}", f"ST-{i}") for i in range(6)]
    records[2] = bakery("Stop 2", "ST-2", region="nowhere")
    records[4] = bakery("", "ST-4")  # invalid too, but never reached
    response = await BulkEngine(engine).run(
        BAKERIES, request(Operation.CREATE, records, atomic=False, continue_on_error=False)
    )

    assert [r.success for r in response.results] == [True, True, False, False, False, False]
    assert codes(response.results[2]) == ["INVALID_VALUE"]
    for result in response.results[3:]:
        assert codes(result) == ["NOT_PROCESSED"]
    assert (response.succeeded, response.failed) == (2, 4)
    assert [await dbstate.bakery_by_key(engine, f"ST-{i}") is not None for i in range(6)] == [
        True,
        True,
        False,
        False,
        False,
        False,
    ]


async def test_validate_only_reports_database_conflicts_and_changes_nothing(engine):
    before = await dbstate.snapshot(engine)
    taken = before["cake_orders"][0][1]  # an external id already in the database
    records = [
        BatchRecord(data={"bakeryId": "1", "writtenPhrase": "Fine", "externalId": "VO-1"}),
        BatchRecord(data={"bakeryId": "1", "writtenPhrase": "Taken key", "externalId": taken}),
        BatchRecord(data={"bakeryId": "999", "writtenPhrase": "No such bakery"}),
    ]
    response = await BulkEngine(engine).run(
        CAKE_ORDERS, request(Operation.CREATE, records, validate_only=True)
    )

    assert response.meta.validate_only is True
    assert [r.success for r in response.results] == [True, False, False]
    assert codes(response.results[1]) == ["DUPLICATE"]
    assert response.results[1].errors[0].field == "data.externalId"
    assert codes(response.results[2]) == ["REFERENCE_NOT_FOUND"]
    assert response.results[2].errors[0].field == "data.bakeryId"
    # What would happen, without an id that would not exist.
    assert response.results[0].id is None and response.results[0].created is True
    assert await dbstate.snapshot(engine) == before


async def test_validate_only_runs_the_database_rules_the_checks_do_not_know(engine):
    async with engine.begin() as conn:
        await conn.execute(text("CREATE UNIQUE INDEX ix_test_bakery_name ON bakeries (name)"))
    before = await dbstate.snapshot(engine)
    existing_name = before["bakeries"][0][2]
    records = [bakery("Would be fine"), bakery(existing_name)]
    response = await BulkEngine(engine).run(
        BAKERIES, request(Operation.CREATE, records, validate_only=True)
    )
    assert [r.success for r in response.results] == [True, False]
    assert codes(response.results[1]) == ["DUPLICATE"]
    assert response.results[1].errors[0].field == "data.name"
    assert await dbstate.snapshot(engine) == before


async def test_upsert_updates_existing_external_ids_and_creates_new_ones(engine):
    existing = await dbstate.bakery_by_key(engine, "BKR-0002")
    records = [
        BatchRecord(external_id="BKR-0002", data={"name": "Renamed by upsert"}),
        BatchRecord(external_id="UP-NEW", data={"name": "Brand new", "region": "CENTRAL"}),
        BatchRecord(external_id="UP-NEW-2", data={"name": "No region"}),
    ]
    response = await BulkEngine(engine).run(
        BAKERIES, request(Operation.UPSERT, records, return_records=True)
    )

    updated, created, incomplete = response.results
    assert (updated.success, updated.created, updated.id) == (True, False, existing.id)
    assert updated.data is not None and updated.data["name"] == "Renamed by upsert"
    assert created.success is True and created.created is True
    assert codes(incomplete) == ["REQUIRED"]
    assert incomplete.errors[0].field == "data.region"

    row = await dbstate.bakery_by_key(engine, "BKR-0002")
    assert (row.id, row.name, row.region) == (existing.id, "Renamed by upsert", existing.region)
    new = await dbstate.bakery_by_key(engine, "UP-NEW")
    assert (new.id, new.name, new.region) == (created.id, "Brand new", Region.CENTRAL)
    assert await dbstate.bakery_by_key(engine, "UP-NEW-2") is None


async def test_duplicate_ids_in_one_batch_are_caught_before_any_write(engine):
    before = await dbstate.snapshot(engine)
    records = [
        BatchRecord(id="1", data={"name": "First claim"}),
        BatchRecord(id="2", data={"name": "Untouched"}),
        BatchRecord(id="1", data={"name": "Second claim"}),
    ]
    with count_statements(engine) as log:
        response = await BulkEngine(engine).run(
            BAKERIES, request(Operation.UPDATE, records, atomic=True)
        )

    assert codes(response.results[2]) == ["DUPLICATE"]
    assert response.results[2].errors[0].field == "id"
    assert "record 0" in response.results[2].errors[0].message
    assert codes(response.results[0]) == codes(response.results[1]) == ["ALL_OR_NONE_ROLLED_BACK"]
    # Only the existence check ran: no UPDATE was even tried.
    assert [s.split()[0] for s in log.statements] == ["SELECT"]
    assert await dbstate.snapshot(engine) == before


async def test_duplicate_external_ids_in_one_batch_are_caught_before_any_write(engine):
    records = [bakery("One", "DUP-X"), bakery("Two", "DUP-Y"), bakery("Three", "DUP-X")]
    with count_statements(engine) as log:
        response = await BulkEngine(engine).run(BAKERIES, request(Operation.CREATE, records))
    assert [r.success for r in response.results] == [True, True, False]
    assert codes(response.results[2]) == ["DUPLICATE"]
    assert response.results[2].errors[0].field == "data.externalId"
    # One look-up and one INSERT of the two valid records: the database never saw the duplicate.
    assert [s.split()[0] for s in log.statements] == ["SELECT", "INSERT"]
    assert (await dbstate.bakery_by_key(engine, "DUP-X")).name == "One"
    assert await dbstate.bakeries_named(engine, "Three") == []


async def test_more_records_than_the_limit_are_refused_whole(engine):
    before = await dbstate.snapshot(engine)
    records = [bakery(f"Too many {i}") for i in range(201)]
    with count_statements(engine) as log:
        response = await BulkEngine(engine).run(BAKERIES, request(Operation.CREATE, records))

    assert response.success is False
    assert response.error is not None and response.error.code == "BATCH_TOO_LARGE"
    assert "200" in response.error.message
    assert response.results == ()
    assert (response.total, response.succeeded, response.failed) == (201, 0, 201)
    assert log.count == 0
    assert await dbstate.snapshot(engine) == before


async def test_the_limit_itself_is_accepted(engine):
    response = await BulkEngine(engine, Limits(max_records=3)).run(
        BAKERIES, request(Operation.CREATE, [bakery(f"Limit {i}") for i in range(3)])
    )
    assert response.success and response.succeeded == 3


async def test_disabled_bulk_operations_are_refused(engine):
    before = await dbstate.snapshot(engine)
    response = await BulkEngine(engine, Limits(enabled=False)).run(
        BAKERIES, request(Operation.CREATE, [bakery("Nope")])
    )
    assert response.error is not None and response.error.code == "BULK_DISABLED"
    assert await dbstate.snapshot(engine) == before


async def test_server_defaults_fill_the_options_a_request_leaves_out(engine):
    bulk = BulkEngine(engine, Limits(defaults=BatchOptions(atomic=True, return_records=True)))
    options = bulk.options(OptionOverrides(validate_only=True))
    assert options == BatchOptions(
        atomic=True, return_records=True, continue_on_error=True, validate_only=True
    )
    assert bulk.options(None) == BatchOptions(atomic=True, return_records=True)
    assert bulk.options(OptionOverrides(atomic=False)).atomic is False


@pytest.mark.parametrize(
    ("operation", "records", "expected"),
    [
        ("CREATE", [bakery(f"Set {i}", f"SET-{i}") for i in range(200)], ["SELECT", "INSERT"]),
        ("CREATE", [bakery(f"Set {i}") for i in range(200)], ["INSERT"]),
    ],
)
async def test_a_create_of_200_records_is_one_insert(engine, operation, records, expected):
    with count_statements(engine) as log:
        response = await BulkEngine(engine).run(
            BAKERIES, request(Operation[operation], records, return_records=True)
        )
    assert response.success, response.results[:3]
    assert [s.split()[0] for s in log.statements] == expected
    assert await dbstate.count(engine, "bakeries") == 6 + 200
    # Ids come back in request order, matching the rows' data.
    for record, result in zip(records, response.results, strict=True):
        assert result.data is not None and result.data["name"] == record.data["name"]
        assert result.data["id"] == result.id


async def test_update_upsert_delete_of_200_records_are_set_based(engine):
    bulk = BulkEngine(engine)
    created = await bulk.run(
        BAKERIES, request(Operation.CREATE, [bakery(f"S {i}", f"S-{i}") for i in range(200)])
    )
    ids = [result.id for result in created.results]

    updates = [BatchRecord(id=str(pk), data={"name": f"U {pk}"}) for pk in ids]
    with count_statements(engine) as log:
        assert (await bulk.run(BAKERIES, request(Operation.UPDATE, updates))).success
    assert [s.split()[0] for s in log.statements] == ["SELECT", "UPDATE"]

    upserts = [BatchRecord(external_id=f"S-{i}", data={"name": f"V {i}"}) for i in range(100)]
    upserts += [
        BatchRecord(external_id=f"T-{i}", data={"name": f"T {i}", "region": "CENTRAL"})
        for i in range(100)
    ]
    with count_statements(engine) as log:
        response = await bulk.run(BAKERIES, request(Operation.UPSERT, upserts))
    assert response.success
    assert [r.created for r in response.results] == [False] * 100 + [True] * 100
    assert [s.split()[0] for s in log.statements] == ["SELECT", "UPDATE", "INSERT"]

    deletes = [BatchRecord(id=str(pk)) for pk in ids]
    with count_statements(engine) as log:
        assert (await bulk.run(BAKERIES, request(Operation.DELETE, deletes))).success
    assert [s.split()[0] for s in log.statements] == ["SELECT", "DELETE"]
    assert await dbstate.count(engine, "bakeries") == 6 + 100
    assert (await dbstate.bakery_by_key(engine, "T-7")).name == "T 7"


async def test_update_changes_only_the_given_fields(engine):
    one, two = await dbstate.bakery(engine, 1), await dbstate.bakery(engine, 2)
    records = [
        BatchRecord(id="1", data={"name": "Only the name"}),
        BatchRecord(id=2, data={"region": "SOUTH_WEST", "externalId": None}),
    ]
    response = await BulkEngine(engine).run(BAKERIES, request(Operation.UPDATE, records))
    assert response.success
    after_one, after_two = await dbstate.bakery(engine, 1), await dbstate.bakery(engine, 2)
    assert (after_one.name, after_one.region, after_one.external_id) == (
        "Only the name",
        one.region,
        one.external_id,
    )
    assert (after_two.name, after_two.region, after_two.external_id) == (
        two.name,
        Region.SOUTH_WEST,
        None,
    )


async def test_update_and_delete_report_missing_rows(engine):
    before = await dbstate.snapshot(engine)
    records = [BatchRecord(id="12345", data={"name": "Ghost"}), BatchRecord(id="abc", data={})]
    response = await BulkEngine(engine).run(BAKERIES, request(Operation.UPDATE, records))
    assert codes(response.results[0]) == ["NOT_FOUND"]
    assert codes(response.results[1]) == ["NOT_FOUND", "INVALID_VALUE"]
    deleted = await BulkEngine(engine).run(
        BAKERIES, request(Operation.DELETE, [BatchRecord(id="777")])
    )
    assert codes(deleted.results[0]) == ["NOT_FOUND"]
    assert await dbstate.snapshot(engine) == before


@pytest.mark.parametrize("raw", [" 1", "+1", "1_000", "१", "9" * 5000])
async def test_an_id_that_is_not_plain_ascii_digits_names_no_row(engine, raw):
    before = await dbstate.snapshot(engine)
    records = [BatchRecord(id=raw, data={"name": "Loose"})]
    response = await BulkEngine(engine).run(BAKERIES, request(Operation.UPDATE, records))
    assert codes(response.results[0]) == ["NOT_FOUND"]
    assert response.results[0].errors[0].field == "id"
    assert await dbstate.snapshot(engine) == before


async def test_update_refuses_an_external_id_another_row_holds(engine):
    records = [BatchRecord(id="1", data={"externalId": "BKR-0002"})]
    response = await BulkEngine(engine).run(BAKERIES, request(Operation.UPDATE, records))
    assert codes(response.results[0]) == ["DUPLICATE"]
    assert "bakery 2" in response.results[0].errors[0].message
    assert (await dbstate.bakery(engine, 1)).external_id == "BKR-0001"


async def test_delete_removes_the_rows_and_their_orders(engine):
    before = await dbstate.count(engine, "cake_orders")
    response = await BulkEngine(engine).run(
        BAKERIES,
        request(Operation.DELETE, [BatchRecord(id="1"), BatchRecord(id="2")], return_records=True),
    )
    assert response.success
    assert response.results[0].data is not None and response.results[0].data["id"] == 1
    assert await dbstate.bakery(engine, 1) is None and await dbstate.bakery(engine, 2) is None
    assert await dbstate.count(engine, "cake_orders") == before - 10


async def test_every_problem_of_a_record_is_reported(engine):
    records = [
        BatchRecord(id="5", data={"bakeryId": "x", "currentTotal": -3, "status": "EATEN", "z": 1}),
        BatchRecord(data=None),
        BatchRecord(external_id="K", data={"writtenPhrase": "w"}),
    ]
    response = await BulkEngine(engine).run(CAKE_ORDERS, request(Operation.CREATE, records))
    first = [(e.code, e.field) for e in response.results[0].errors]
    assert first == [
        ("INVALID_VALUE", "id"),
        ("REFERENCE_NOT_FOUND", "data.bakeryId"),
        ("INVALID_VALUE", "data.currentTotal"),
        ("INVALID_VALUE", "data.status"),
        ("INVALID_VALUE", "data.z"),
        ("REQUIRED", "data.writtenPhrase"),
    ]
    assert [(e.code, e.field) for e in response.results[1].errors] == [("REQUIRED", "data")]
    assert [(e.code, e.field) for e in response.results[2].errors] == [
        ("REQUIRED", "data.bakeryId")
    ]


async def test_created_orders_get_the_defaults(engine):
    records = [BatchRecord(data={"bakeryId": 3, "writtenPhrase": "Defaults", "externalId": "DF"})]
    response = await BulkEngine(engine).run(
        CAKE_ORDERS, request(Operation.CREATE, records, return_records=True)
    )
    assert response.success
    row = await dbstate.order_by_key(engine, "DF")
    assert (row.bakery_id, row.current_total, row.status.name) == (3, 0, "PLACED")
    assert response.results[0].data is not None
    assert response.results[0].data["created_at"] == row.created_at


async def test_an_empty_batch_succeeds_without_touching_the_database(engine):
    with count_statements(engine) as log:
        response = await BulkEngine(engine).run(BAKERIES, request(Operation.UPDATE, []))
    assert (response.success, response.total, log.count) == (True, 0, 0)


async def test_an_unexpected_fault_is_internal_with_the_batch_id_and_writes_nothing(engine, caplog):
    before = await dbstate.snapshot(engine)
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE cake_orders RENAME TO cake_orders_away"))
    try:
        records = [BatchRecord(data={"bakeryId": "1", "writtenPhrase": "Lost"})]
        response = await BulkEngine(engine).run(CAKE_ORDERS, request(Operation.CREATE, records))
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE cake_orders_away RENAME TO cake_orders"))
    assert response.error is not None and response.error.code == "INTERNAL"
    batch_id = response.meta.batch_id
    assert batch_id in response.error.message and "Traceback" not in response.error.message
    assert (response.results, response.failed) == ((), 1)
    logged = [r for r in caplog.records if r.name == "batchery.bulk" and batch_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None
    assert await dbstate.snapshot(engine) == before


STATEMENTS_PER_200 = {
    # operation: statements for 200 valid records (transaction control not counted)
    "CREATE": ["SELECT", "INSERT"],
    "UPDATE": ["SELECT", "SELECT", "UPDATE"],
    "UPSERT": ["SELECT", "UPDATE", "INSERT"],
    "DELETE": ["SELECT", "DELETE"],
}


@pytest.mark.parametrize("atomic", [False, True])
@pytest.mark.parametrize("operation", list(STATEMENTS_PER_200))
async def test_statements_per_200_record_batch(engine, operation, atomic):
    bulk = BulkEngine(engine)
    seeded = await bulk.run(
        BAKERIES, request(Operation.CREATE, [bakery(f"P {i}", f"P-{i}") for i in range(200)])
    )
    ids = [result.id for result in seeded.results]
    records = {
        "CREATE": [bakery(f"N {i}", f"N-{i}") for i in range(200)],
        "UPDATE": [
            BatchRecord(id=str(pk), data={"name": f"U {i}", "externalId": f"U-{i}"})
            for i, pk in enumerate(ids)
        ],
        "UPSERT": [BatchRecord(external_id=f"P-{i}", data={"name": f"V {i}"}) for i in range(100)]
        + [
            BatchRecord(external_id=f"W-{i}", data={"name": f"W {i}", "region": "CENTRAL"})
            for i in range(100)
        ],
        "DELETE": [BatchRecord(id=str(pk)) for pk in ids],
    }[operation]
    with count_statements(engine) as log:
        response = await bulk.run(
            BAKERIES, request(Operation[operation], records, atomic=atomic, return_records=True)
        )
    assert response.success and response.succeeded == 200
    assert [s.split()[0] for s in log.statements] == STATEMENTS_PER_200[operation]


async def test_text_the_database_cannot_store_is_an_invalid_value(engine):
    before = await dbstate.snapshot(engine)
    records = [
        BatchRecord(external_id="nul\x00key", data={"name": "Fine", "region": "CENTRAL"}),
        BatchRecord(external_id="ok", data={"name": "half \ud800 surrogate", "region": "CENTRAL"}),
    ]
    response = await BulkEngine(engine).run(BAKERIES, request(Operation.UPSERT, records))
    assert [(e.code, e.field) for r in response.results for e in r.errors] == [
        ("INVALID_VALUE", "externalId"),
        ("INVALID_VALUE", "data.name"),
    ]
    assert await dbstate.snapshot(engine) == before
