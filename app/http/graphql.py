"""`/graphql`: GraphiQL for browsers; GraphQL over HTTP, JSON-array batches and multipart uploads.

The request is read into one list of operations (`params`, `multipart`), run by `BatchRunner`
through `schema.execution.Executor`, and answered in the order sent. What the contract
(shared/contract/http.md) leaves open is written down in docs/transport.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from graphql import GraphQLError, OperationType
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive

from app.db.audit import AuditEntry
from app.http import audit
from app.http.access import caller_of, request_id_of
from app.http.batch import BatchRunner, Outcome, Planned, plan, validated
from app.http.errors import RequestError, bad_request, too_large
from app.http.graphiql import graphiql_page
from app.http.media import (
    GRAPHQL_RESPONSE_JSON,
    JSON,
    MULTIPART,
    content_type,
    negotiate,
    prefers_html,
    render,
)
from app.http.metrics import Metrics
from app.http.multipart import check_preflight, read_multipart
from app.http.params import (
    Layout,
    Operation,
    operation_from_query_params,
    operations_from_payload,
    parse_json,
)
from app.http.sse import subscription_response, wants_event_stream
from app.http.throttle import (
    THROTTLED,
    Throttled,
    charge,
    rate_headers,
    refund,
    throttle_status,
)
from app.ratelimit import Charge
from app.settings import Settings
from app.uploads import UploadSpool
from schema.context import Context
from schema.execution import Executor

ALLOWED_METHODS = "GET, POST"
COST_HEADER = "GraphQL-Cost"
# A request that is well formed and understood, but whose operations together ask for more work
# than the server does for one request: 422 Unprocessable Content. Not 413 (the body is not too
# large), not 400 (nothing is malformed), not 429 (waiting does not help: the same request is
# refused again).
REQUEST_COST_STATUS = 422
# Every method reaches the endpoint, so the others get a JSON 405 rather than Starlette's text.
ROUTE_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def graphql_endpoint(request: Request) -> Response:
    try:
        return await _dispatch(request)
    except RequestError as error:
        return render(error.payload(), _error_media_type(request), error.status, error.headers)


async def _dispatch(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    accept = request.headers.get("accept")
    streams = wants_event_stream(accept)  # a subscription over SSE (app/http/sse.py)
    if request.method in ("GET", "HEAD"):
        if settings.graphiql and "query" not in request.query_params and prefers_html(accept):
            return graphiql_page(request.url.path)
        operation = operation_from_query_params(request.query_params)
        if streams:
            return await subscription_response(request, [operation])
        media_type = negotiate(accept)
        return await _respond(request, [operation], Layout(False), media_type, via_get=True)
    if request.method != "POST":
        raise RequestError(
            405,
            f"/graphql answers GET and POST, not {request.method}.",
            "METHOD_NOT_ALLOWED",
            headers={"Allow": ALLOWED_METHODS},
        )
    kind, params = content_type(request.headers.get("content-type"))
    if kind == JSON:
        charset = params.get("charset", "utf-8").lower()
        if charset not in ("utf-8", "utf8"):
            raise _unsupported(f"application/json with charset={charset}")
        if streams:
            payload = await _read_json(request, settings)
            return await subscription_response(
                request, operations_from_payload(payload, settings)[0]
            )
        media_type = negotiate(accept)
        payload = await _read_json(request, settings)
        operations, layout = operations_from_payload(payload, settings)
        return await _respond(request, operations, layout, media_type)
    media_type = negotiate(accept)
    if kind == MULTIPART:
        check_preflight(request, settings)
        spool = UploadSpool(settings.resolved_upload_spool_dir, settings.upload_spool_bytes)
        try:
            payload = await read_multipart(request, settings, spool)
            operations, layout = operations_from_payload(payload, settings)
            return await _respond(request, operations, layout, media_type)
        finally:
            spool.close()
    raise _unsupported(kind or "no Content-Type")


async def _respond(
    request: Request,
    operations: list[Operation],
    layout: Layout,
    media_type: str,
    *,
    via_get: bool = False,
) -> Response:
    app_state = request.app.state
    mode = cost_mode(request)
    executor: Executor = app_state.executor
    planned: list[Planned] = []
    for operation in operations:
        query = operation.request.query if operation.request is not None else None
        fresh = isinstance(query, str) and not executor.is_cached(query)
        planned.append(plan(executor, operation))
        if fresh:
            # A new document was parsed and costed (tens of ms for a few hundred aliases): let
            # other requests run between the documents of a batch, so refusing many stalls none.
            await asyncio.sleep(0)
    if via_get and any(item.kind is OperationType.MUTATION for item in planned):
        raise RequestError(
            405,
            "Mutations cannot be sent with GET: send them with POST.",
            "METHOD_NOT_ALLOWED",
            headers={"Allow": "POST"},
        )
    settings: Settings = app_state.settings
    metrics: Metrics = app_state.metrics
    metrics.record_costs(planned)
    check_request_cost(planned, settings, metrics)  # before any charge: a refusal costs nothing
    charged = None
    if mode != "validate":  # validate: nothing runs, nothing is charged
        try:
            charged = await charge(
                request,
                sum(item.requested_cost for item in planned),
                api="graphql",
                operations=len(planned),
            )
        except Throttled as refusal:  # nothing of the request runs
            raise RequestError(
                429,
                refusal.message,
                THROTTLED,
                headers=refusal.headers,
                extensions=refusal.extensions,
            ) from None
    after_answer: list[Callable[[], None]] = []
    try:
        return await _answer(
            request, operations, planned, mode, charged, after_answer, layout, media_type
        )
    finally:
        # The results and loaders are gone with `_answer`'s frame: what waited for that runs now.
        for action in after_answer:
            action()


async def _answer(
    request: Request,
    operations: list[Operation],
    planned: list[Planned],
    mode: str | None,
    charged: Charge | None,
    after_answer: list[Callable[[], None]],
    layout: Layout,
    media_type: str,
) -> Response:
    app_state = request.app.state
    settings: Settings = app_state.settings
    metrics: Metrics = app_state.metrics
    budget = charged.status if charged is not None else None
    if mode == "validate":
        outcomes = validated(planned)
    else:
        context = Context.create(
            app_state.engine,
            settings,
            reader=app_state.reader,
            request=request,
            caller=caller_of(request),
            request_id=request_id_of(request),
            rate_limit=budget,
            after_answer=after_answer,
            jobs=getattr(app_state, "jobs", None),
        )
        outcomes = await BatchRunner(app_state.executor, settings).run(
            planned, context, disconnected=lambda: until_disconnected(request.receive)
        )
        # Shopify's refund: what the operations did not use (lists shorter than requested) goes
        # back to the budget, and the headers and throttle status say what is left after it.
        charged = await refund(request, charged, unused_points(planned, outcomes))
        budget = charged.status if charged is not None else None
    metrics.record_operations((outcome.kind, _label(outcome)) for outcome in outcomes)
    forbidden = sum(1 for outcome in outcomes if _refusal_code(outcome) == "FORBIDDEN")
    if forbidden:
        metrics.auth_refusals.labels("FORBIDDEN").inc(forbidden)
    await audit.write(request, app_state.engine, _audit_entries(request, planned, outcomes))
    metrics.record_stopped((o.kind, o.stopped) for o in outcomes if o.stopped is not None)
    formatted = [format_outcome(outcome) for outcome in outcomes]
    if budget is not None:
        status_of_budget = throttle_status(budget)
        for response in formatted:
            # Copies: the dictionaries may be shared (identical operations answered once).
            extensions = dict(response.get("extensions") or {})
            extensions["cost"] = {**extensions.get("cost", {}), "throttleStatus": status_of_budget}
            response["extensions"] = extensions
    headers = rate_headers(budget)
    if layout.many:
        entries = [layout.entry(op, item) for op, item in zip(operations, formatted, strict=True)]
        return render(entries, media_type, headers=headers)
    status = _status(outcomes[0], media_type)
    return render(formatted[0], media_type, status, headers)


async def until_disconnected(receive: Receive) -> None:
    """Return once the client has gone. The body has been read by now (or there is none), so
    what `receive` gives next is the disconnection; any leftover body message is skipped."""
    while (await receive())["type"] != "http.disconnect":
        pass


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


def _status(outcome: Outcome, media_type: str) -> int:
    """A lone operation's status: 400 for unusable parameters whatever the media type; for other
    request errors 400 with application/graphql-response+json, 200 with legacy application/json."""
    if outcome.bad_parameters:
        return 400
    if _refusal_code(outcome) == "FORBIDDEN":
        return 403
    if outcome.rejected and media_type == GRAPHQL_RESPONSE_JSON:
        return 400
    return 200


def _refusal_code(outcome: Outcome) -> str | None:
    """FORBIDDEN / UNAUTHENTICATED when the operation was refused for its scopes."""
    if not outcome.rejected or not outcome.result.errors:
        return None
    code = (outcome.result.errors[0].extensions or {}).get("code")
    return code if code in ("FORBIDDEN", "UNAUTHENTICATED") else None


def _audit_entries(
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


def cost_mode(request: Request) -> str | None:
    """The `GraphQL-Cost` request header (Hot Chocolate's): `report` (the default: run and
    report) or `validate` (cost only, run nothing). Anything else is a 400 naming both."""
    value = request.headers.get(COST_HEADER)
    if value is None:
        return None
    mode = value.strip().lower()
    if mode not in ("report", "validate"):
        raise bad_request(
            f"The {COST_HEADER} header must be `report` (run, and report the cost) or "
            f"`validate` (report the cost, run nothing), not {value!r}."
        )
    return mode


def check_request_cost(planned: list[Planned], settings: Settings, metrics: Metrics) -> None:
    """Refuse the whole request, before anything runs, when its operations together cost more
    than `max_request_cost` (operations already refused add nothing)."""
    limit = settings.max_request_cost
    total = sum(item.requested_cost for item in planned)
    if limit <= 0 or total <= limit:
        return
    metrics.cost_refusals.labels("request").inc(sum(1 for p in planned if p.requested_cost))
    raise RequestError(
        REQUEST_COST_STATUS,
        f"The request's operations cost {total} together, over the limit of {limit} for one "
        f"request: send fewer or smaller operations, or split the batch (a server limit, set "
        f"by BATCHERY_MAX_REQUEST_COST). Nothing was run.",
        "COST_LIMIT_EXCEEDED",
        extensions={
            "requestedQueryCost": total,
            "limit": limit,
            "setting": "BATCHERY_MAX_REQUEST_COST",
        },
    )


def format_outcome(outcome: Outcome) -> dict[str, Any]:
    result = outcome.result
    skipped = outcome.rejected or outcome.validated
    formatted: dict[str, Any] = {} if skipped else {"data": result.data}
    if result.errors:
        formatted["errors"] = [_format_error(error, outcome.code) for error in result.errors]
    extensions = dict(result.extensions or {})
    if outcome.cost is not None:
        extensions["cost"] = outcome.cost.as_extension()
    if extensions:
        formatted["extensions"] = extensions
    return formatted


def _format_error(error: GraphQLError, code: str | None) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    extensions = dict(formatted.get("extensions") or {})
    if code is not None and "code" not in extensions:
        extensions["code"] = code
    if extensions:
        formatted["extensions"] = extensions
    return formatted


def _label(outcome: Outcome) -> str:
    if outcome.validated:
        return "validated"
    if outcome.rejected:
        return "rejected"
    return "error" if outcome.result.errors else "ok"


async def _read_json(request: Request, settings: Settings) -> Any:
    # A JSON body is the `operations` of a request without files: the smaller of both limits holds.
    setting = min(("max_operations_bytes", "max_body_bytes"), key=lambda n: getattr(settings, n))
    limit: int = getattr(settings, setting)

    def refusal() -> RequestError:
        return too_large("The JSON body is too large", "BODY_TOO_LARGE", setting, limit)

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise refusal()
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise refusal()
    except ClientDisconnect:
        raise bad_request("The client disconnected before the body was complete.") from None
    if not body.strip():
        raise bad_request(
            "The request body is empty: send a JSON object with the GraphQL document in `query`."
        )
    return parse_json(bytes(body), "The request body")


def _unsupported(what: str) -> RequestError:
    return RequestError(
        415,
        f"Unsupported Content-Type ({what}): send {JSON} (charset utf-8) "
        f"or {MULTIPART} (GraphQL multipart request spec).",
        "UNSUPPORTED_MEDIA_TYPE",
    )


def _error_media_type(request: Request) -> str:
    try:
        return negotiate(request.headers.get("accept"))
    except RequestError:
        return JSON
