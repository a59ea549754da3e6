"""The audit trail: one row per write that ran, naming its caller and its HTTP request.

Written after the write, in a transaction of its own, in one statement per request (GraphQL) or
per REST write: a process killed between a write and its audit row loses that row (README:
Authentication and access).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.job_model import Job
from app.db.models import AuditEvent, utcnow

audit_table = cast(Table, AuditEvent.__table__)
_c = audit_table.c


@dataclass(frozen=True, slots=True)
class AuditEntry:
    request_id: str
    caller: str
    transport: str
    action: str
    outcome: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: datetime
    entry: AuditEntry


def job_submitted(job: Job, caller: str, request_id: str, transport: str) -> AuditEntry:
    """The entry of a bulk job's submission: its records are written later, by a worker, under
    the job's id (the entries of the request that submitted it name that id)."""
    spec = job.spec
    detail = (
        f"{spec.entity} {spec.operation.value} {job.counts.total} records "
        f"({spec.file_format.value}{', atomic' if spec.options.atomic else ''})"
    )
    return AuditEntry(request_id, caller, transport, f"submit bulk job {job.id}", "ok", detail)


async def record(engine: AsyncEngine, entries: Sequence[AuditEntry]) -> None:
    if not entries:
        return
    now = utcnow()
    rows = [
        {
            "at": now,
            "request_id": entry.request_id,
            "caller": entry.caller[:64],
            "transport": entry.transport,
            "action": entry.action[:500],
            "outcome": entry.outcome,
            "detail": entry.detail[:500],
        }
        for entry in entries
    ]
    async with engine.begin() as conn:
        await conn.execute(audit_table.insert(), rows)


async def newest(engine: AsyncEngine, first: int, caller: str | None = None) -> list[AuditRecord]:
    """The newest `first` events, newest first; only `caller`'s when given."""
    statement = select(*_c).order_by(_c.id.desc()).limit(first)
    if caller is not None:
        statement = statement.where(_c.caller == caller)
    async with engine.connect() as conn:
        rows = (await conn.execute(statement)).all()
    return [
        AuditRecord(
            row.id,
            row.at,
            AuditEntry(
                row.request_id, row.caller, row.transport, row.action, row.outcome, row.detail
            ),
        )
        for row in rows
    ]
