"""A `BatchResponse` to JSON and back, exactly: what an idempotent retry is answered with."""

from __future__ import annotations

from typing import Any

import orjson

from app.bulk.entities import Entity
from app.bulk.model import BatchMeta, BatchResponse, Operation, RecordError, RecordResult


def encode_response(entity: Entity, response: BatchResponse) -> str:
    payload = {
        "operation": response.operation.value,
        "total": response.total,
        "succeeded": response.succeeded,
        "error": _error(response.error) if response.error else None,
        "meta": {
            "batch_id": response.meta.batch_id,
            "duration_ms": response.meta.duration_ms,
            "validate_only": response.meta.validate_only,
            "atomic": response.meta.atomic,
        },
        "results": [
            {
                "index": result.index,
                "success": result.success,
                "id": result.id,
                "errors": [_error(error) for error in result.errors],
                "data": entity.encode_row(result.data) if result.data is not None else None,
                "created": result.created,
            }
            for result in response.results
        ],
    }
    return orjson.dumps(payload).decode()


def decode_response(entity: Entity, text: str) -> BatchResponse:
    payload = orjson.loads(text)
    results = tuple(
        RecordResult(
            index=item["index"],
            success=item["success"],
            id=item["id"],
            errors=tuple(RecordError(**error) for error in item["errors"]),
            data=entity.decode_row(item["data"]) if item["data"] is not None else None,
            created=item["created"],
        )
        for item in payload["results"]
    )
    error = payload["error"]
    return BatchResponse(
        operation=Operation(payload["operation"]),
        results=results,
        meta=BatchMeta(**payload["meta"]),
        total=payload["total"],
        succeeded=payload["succeeded"],
        error=RecordError(**error) if error else None,
    )


def _error(error: RecordError) -> dict[str, Any]:
    return {"code": error.code, "message": error.message, "field": error.field}
