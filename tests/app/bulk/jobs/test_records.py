"""A job's line as a bulk record: `id` and `externalId` go where each operation reads them."""

from __future__ import annotations

from app.bulk.importing import SourceRow
from app.bulk.jobs.records import record_of
from app.bulk.model import BatchRecord, Operation


def row(**data: object) -> SourceRow:
    return SourceRow(5, dict(data))


def test_each_operation_reads_id_and_external_id_as_a_batch_record_holds_them():
    line = "line 5"
    assert record_of(Operation.CREATE, row(name="a", externalId="K")) == BatchRecord(
        data={"name": "a", "externalId": "K"}, label=line
    )
    assert record_of(Operation.UPDATE, row(id="3", externalId="K")) == BatchRecord(
        id="3", data={"externalId": "K"}, label=line
    )
    assert record_of(Operation.UPSERT, row(externalId="K", name="a")) == BatchRecord(
        data={"name": "a"}, external_id="K", label=line
    )
    assert record_of(Operation.DELETE, row(id=3)) == BatchRecord(id=3, label=line)
    # Left for the engine to refuse, with its own words.
    assert record_of(Operation.DELETE, row(id=3, name="x")).data == {"name": "x"}
    assert record_of(Operation.CREATE, row(id=3, name="x")).id == 3
