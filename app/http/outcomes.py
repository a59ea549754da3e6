"""What the operations of a request produced, as the client and the server's records see it:
each outcome formatted as a GraphQL response, a lone operation's status code, the points to
refund, and the metrics and audit entries written once the operations are done. Shared by the
whole answer (`app/http/graphql.py`) and the streamed one (`app/http/streaming.py`)."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError, OperationType
from starlette.requests import Request

from app.db.audit import AuditEntry
from app.http import audit
from app.http.media import GRAPHQL_RESPONSE_JSON
from app.http.metrics import Metrics
from app.http.planning import Outcome, Planned


async def record(request: Request, planned: list[Planned], outcomes: list[Outcome]) -> None:
    """Metrics and the audit trail of a request whose operations are all done."""
    app_state = request.app.state
    metrics: Metrics = app_state.metrics
    metrics.record_operations((outcome.kind, label(outcome)) for outcome in outcomes)
    forbidden = stopped = mutations = 0
    for outcome in outcomes:
        if refusal_code(outcome) == "FORBIDDEN":
            forbidden += 1
        if outcome.stopped is not None:
            stopped += 1
        if outcome.kind is OperationType.MUTATION:
            mutations += 1
    if forbidden:
        metrics.auth_refusals.labels("FORBIDDEN").inc(forbidden)
    if mutations:  # only mutations are audited
        await audit.write(request, app_state.engine, audit_entries(request, planned, outcomes))
    if stopped:
        metrics.record_stopped((o.kind, o.stopped) for o in outcomes if o.stopped is not None)


def with_throttle_status(response: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    """The response with the client's budget in `extensions.cost.throttleStatus`. A copy: the
    dictionaries may be shared (identical operations answered once)."""
    extensions = dict(response.get("extensions") or {})
    extensions["cost"] = {**extensions.get("cost", {}), "throttleStatus": status}
    return {**response, "extensions": extensions}


def unused_points(planned: list[Planned], outcomes: list[Outcome]) -> int:
    """What the operations that were charged did not use: requested minus actual cost, and the
    whole requested cost of one that was charged but never ran (its variables did not coerce)."""
    points = 0
    for item, outcome in zip(planned, outcomes, strict=True):
        cost = outcome.cost
        if item.outcome is not None or cost is None:
            continue  # never charged, or never costed
        if cost.actual is not None:
            points += max(0, cost.requested - cost.actual)
        elif outcome.rejected:
            points += cost.requested
    return points


def lone_status(outcome: Outcome, media_type: str) -> int:
    """A lone operation's status: 400 for unusable parameters whatever the media type; for other
    request errors 400 with application/graphql-response+json, 200 with legacy application/json."""
    if outcome.bad_parameters:
        return 400
    if refusal_code(outcome) == "FORBIDDEN":
        return 403
    if outcome.rejected and media_type == GRAPHQL_RESPONSE_JSON:
        return 400
    return 200


def refusal_code(outcome: Outcome) -> str | None:
    """FORBIDDEN / UNAUTHENTICATED when the operation was refused for its scopes."""
    if not outcome.rejected or not outcome.result.errors:
        return None
    code = (outcome.result.errors[0].extensions or {}).get("code")
    return code if code in ("FORBIDDEN", "UNAUTHENTICATED") else None


def audit_entries(
    request: Request, planned: list[Planned], outcomes: list[Outcome]
) -> list[AuditEntry]:
    """One entry per mutation operation that ran (refused ones never wrote anything)."""
    entries = []
    for item, outcome in zip(planned, outcomes, strict=True):
        if outcome.kind is not OperationType.MUTATION or outcome.rejected or outcome.validated:
            continue
        assert item.prepared is not None and item.prepared.document is not None
        assert item.request is not None
        fields = audit.root_fields(item.prepared.document, item.request.operation_name)
        errors = outcome.result.errors or []
        codes = sorted({str((e.extensions or {}).get("code", "ERROR")) for e in errors})
        entries.append(
            audit.entry(
                request, "graphql", ",".join(fields), "error" if errors else "ok", ",".join(codes)
            )
        )
    return entries


def format_outcome(outcome: Outcome) -> dict[str, Any]:
    result = outcome.result
    skipped = outcome.rejected or outcome.validated
    formatted: dict[str, Any] = {} if skipped else {"data": result.data}
    if result.errors:
        formatted["errors"] = [format_error(error, outcome.code) for error in result.errors]
    extensions = dict(result.extensions or {})
    if outcome.cost is not None:
        extensions["cost"] = outcome.cost.as_extension()
    if extensions:
        formatted["extensions"] = extensions
    return formatted


def format_error(error: GraphQLError, code: str | None) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    extensions = dict(formatted.get("extensions") or {})
    if code is not None and "code" not in extensions:
        extensions["code"] = code
    if extensions:
        formatted["extensions"] = extensions
    return formatted


def label(outcome: Outcome) -> str:
    if outcome.validated:
        return "validated"
    if outcome.rejected:
        return "rejected"
    return "error" if outcome.result.errors else "ok"
