"""`auditTrail`: who wrote what, for callers with the `admin` scope."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from app.db import audit
from schema.types import page_size


@strawberry.type(description="One write that ran: a GraphQL mutation operation or a REST write.")
class AuditEvent:
    id: strawberry.ID
    at: datetime
    request_id: str = strawberry.field(description="The X-Request-Id of the HTTP request.")
    caller: str = strawberry.field(description='"key:<key id>" or "anonymous".')
    transport: str = strawberry.field(description='"graphql" or "rest".')
    action: str = strawberry.field(
        description="The mutation fields run (`deleteManyBakeries`), or the REST route "
        "(`POST /api/bakeries/bulk`)."
    )
    outcome: str = strawberry.field(description='"ok" or "error".')
    detail: str = strawberry.field(
        description="For errors: the GraphQL error codes, or the REST status."
    )

    @classmethod
    def from_record(cls, record: audit.AuditRecord) -> AuditEvent:
        entry = record.entry
        return cls(
            id=strawberry.ID(str(record.id)),
            at=record.at,
            request_id=entry.request_id,
            caller=entry.caller,
            transport=entry.transport,
            action=entry.action,
            outcome=entry.outcome,
            detail=entry.detail,
        )


async def audit_trail(info: Info, first: int | None, caller: str | None) -> list[AuditEvent]:
    limit = page_size(info, first, "first")
    records = await audit.newest(info.context.engine, limit, caller)
    return [AuditEvent.from_record(record) for record in records]
