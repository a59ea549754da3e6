"""A job's lines as bulk records, and their outcomes as result lines.

A line (a JSON object, or a CSV row under its header) holds the record's fields by their public
names, as `batchery import` reads them, plus two keys that are not data:
- `id` names the row an UPDATE or DELETE changes (CREATE and UPSERT refuse it, as in a batch);
- `externalId` is what an UPSERT matches on. In CREATE it is the new row's key, in UPDATE a new
  value for it: data, as in a batch's `data.externalId`.
So a DELETE line is `{"id": 12}`, an UPDATE line `{"id": 12, "name": "New name"}`, an UPSERT line
`{"externalId": "B-7", "name": "Rye", "region": "NORTH_EAST"}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.bulk.importing import SourceRow
from app.bulk.jobs.files import result_line
from app.bulk.model import BatchRecord, ErrorCode, Operation, RecordError, RecordResult

ID, EXTERNAL_ID = "id", "externalId"
# Columns a job's CSV may have on top of the entity's fields.
EXTRA_COLUMNS = (ID,)


def record_of(operation: Operation, row: SourceRow) -> BatchRecord:
    assert row.data is not None
    data = dict(row.data)
    label = f"line {row.line}"
    record_id = data.pop(ID, None)
    if operation is Operation.DELETE:
        # Anything else on the line is refused by the engine ("DELETE takes only the id").
        return BatchRecord(id=record_id, data=data or None, label=label)
    external_id = data.pop(EXTERNAL_ID, None) if operation is Operation.UPSERT else None
    return BatchRecord(id=record_id, data=data, external_id=external_id, label=label)


@dataclass(frozen=True, slots=True)
class Outcome:
    row: SourceRow
    id: int | None
    errors: tuple[RecordError, ...]

    @property
    def success(self) -> bool:
        return not self.errors

    def line(self) -> bytes:
        return result_line(self.row.line, self.id, self.errors)


def outcomes(chunk: Sequence[SourceRow], results: Sequence[RecordResult]) -> list[Outcome]:
    """Each row of the chunk with its result: the engine's for the readable rows (given in their
    order), the reason it could not be read for the others."""
    given = iter(results)
    done = []
    for row in chunk:
        if row.data is None:
            error = RecordError(ErrorCode.INVALID_VALUE, row.problem or "unreadable line")
            done.append(Outcome(row, None, (error,)))
        else:
            result = next(given)
            done.append(Outcome(row, result.id, result.errors))
    assert next(given, None) is None, "a result for no row"
    return done
