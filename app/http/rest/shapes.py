"""REST bodies <-> the bulk engine's dataclasses, shaped like the GraphQL types (camelCase).

A body of the wrong shape (not an object, `records` not a list, an option that is not a boolean,
an unknown key) is refused whole with 400 and the path at fault; a record's *values* are the
engine's business and get per-record errors, as in GraphQL.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.bulk import BatchRecord, BatchResponse, Entity, Operation, OptionOverrides, RecordError
from app.bulk.entities import Kind
from app.http.rest.io import bad_request

OPTIONS = {
    "atomic": "atomic",
    "returnRecords": "return_records",
    "continueOnError": "continue_on_error",
    "validateOnly": "validate_only",
}
RECORD_KEYS = ("id", "data", "externalId")


def parse_batch(body: Any) -> tuple[Operation, list[BatchRecord], OptionOverrides | None]:
    _object(body, "the body", ("operation", "records", "options"))
    operation = body.get("operation")
    if operation not in Operation.__members__:
        names = ", ".join(Operation.__members__)
        raise bad_request(f"operation must be one of {names}, got {operation!r}", "operation")
    records = body.get("records")
    if not isinstance(records, list):
        raise bad_request("records must be a list of records", "records")
    parsed = [parse_record(record, f"records[{i}]") for i, record in enumerate(records)]
    return Operation[operation], parsed, parse_options(body.get("options"))


def parse_delete_many(body: Any) -> tuple[list[str | int], OptionOverrides | None]:
    _object(body, "the body", ("ids", "options"))
    ids = body.get("ids")
    if not isinstance(ids, list) or not all(_is_id(pk) for pk in ids):
        raise bad_request("ids must be a list of ids (strings or numbers)", "ids")
    return ids, parse_options(body.get("options"))


def parse_record(value: Any, at: str) -> BatchRecord:
    _object(value, at, RECORD_KEYS)
    pk, data, key = value.get("id"), value.get("data"), value.get("externalId")
    if pk is not None and not _is_id(pk):
        raise bad_request(f"{at}.id must be a string or a number", f"{at}.id")
    if data is not None and not isinstance(data, dict):
        raise bad_request(f"{at}.data must be an object", f"{at}.data")
    if key is not None and not isinstance(key, str):
        raise bad_request(f"{at}.externalId must be a string", f"{at}.externalId")
    return BatchRecord(id=pk, data=data, external_id=key)


def parse_options(value: Any) -> OptionOverrides | None:
    if value is None:
        return None
    _object(value, "options", tuple(OPTIONS))
    for name, option in value.items():
        if option is not None and not isinstance(option, bool):
            raise bad_request(f"options.{name} must be true, false or null", f"options.{name}")
    return OptionOverrides(**{OPTIONS[name]: option for name, option in value.items()})


def parse_data(value: Any) -> dict[str, Any]:
    """A single record's body (POST, PATCH): the fields, as in `data` of a batch record."""
    if not isinstance(value, dict):
        raise bad_request("the body must be a JSON object of fields")
    return value


def _object(value: Any, at: str, keys: tuple[str, ...]) -> None:
    if not isinstance(value, dict):
        raise bad_request(f"{at} must be a JSON object")
    unknown = [name for name in value if name not in keys]
    if unknown:
        where = "" if at == "the body" else f"{at}."
        raise bad_request(
            f"unknown key {unknown[0]!r} in {at}; expected {', '.join(keys)}",
            f"{where}{unknown[0]}",
        )


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


# ---- out ----


def row_json(entity: Entity, data: Mapping[str, Any]) -> dict[str, Any]:
    """A row as the GraphQL type shows it: camelCase, ids as strings, enums by name."""
    public = {spec.column: spec for spec in entity.fields}
    out: dict[str, Any] = {}
    for column, value in data.items():
        spec = public.get(column)
        name = spec.name if spec else _camel(column)
        references = spec is not None and spec.kind is Kind.REFERENCE
        out[name] = _json_value(value, as_id=column == "id" or references)
    return out


def _json_value(value: Any, *, as_id: bool) -> Any:
    if value is None:
        return None
    if as_id:
        return str(value)
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def error_json(error: RecordError) -> dict[str, Any]:
    return {"code": error.code, "message": error.message, "field": error.field}


def batch_json(entity: Entity, response: BatchResponse) -> dict[str, Any]:
    return {
        "success": response.success,
        "operation": response.operation.value,
        "total": response.total,
        "succeeded": response.succeeded,
        "failed": response.failed,
        "results": [
            {
                "index": result.index,
                "id": str(result.id) if result.id is not None else None,
                "success": result.success,
                "created": result.created,
                "errors": [error_json(error) for error in result.errors],
                "data": row_json(entity, result.data) if result.data is not None else None,
            }
            for result in response.results
        ],
        "error": error_json(response.error) if response.error else None,
        "meta": {
            "batchId": response.meta.batch_id,
            "durationMs": response.meta.duration_ms,
            "validateOnly": response.meta.validate_only,
            "atomic": response.meta.atomic,
        },
    }
