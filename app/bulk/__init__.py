"""Bulk create/update/upsert/delete with the contract's promises (see docs/bulk.md).

Knows nothing of GraphQL or HTTP: the schema and the REST façade translate their shapes to the
dataclasses of `app.bulk.model` and call `BulkEngine`.
"""

from app.bulk.engine import BulkEngine, Limits
from app.bulk.entities import BAKERIES, CAKE_ORDERS, ENTITIES, Entity
from app.bulk.model import (
    BatchMeta,
    BatchOptions,
    BatchRecord,
    BatchRequest,
    BatchResponse,
    ErrorCode,
    Operation,
    OptionOverrides,
    RecordError,
    RecordResult,
)

__all__ = [
    "BAKERIES",
    "CAKE_ORDERS",
    "ENTITIES",
    "BatchMeta",
    "BatchOptions",
    "BatchRecord",
    "BatchRequest",
    "BatchResponse",
    "BulkEngine",
    "Entity",
    "ErrorCode",
    "Limits",
    "Operation",
    "OptionOverrides",
    "RecordError",
    "RecordResult",
]
