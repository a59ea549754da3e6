"""`/graphql`: GraphiQL for browsers; GraphQL over HTTP, JSON-array batches and multipart uploads.

The request is read into one list of operations (`params`, `multipart`), run by `BatchRunner`
through `schema.execution.Executor`, and answered in the order sent. What the contract
(shared/contract/http.md) leaves open is written down in docs/transport.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from graphql import OperationType
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.http.access import caller_of, request_id_of
from app.http.admission import admit
from app.http.batch import BatchRunner, OnDone
from app.http.errors import RequestError, bad_request, too_large
from app.http.graphiql import graphiql_page
from app.http.job_uploads import job_files
from app.http.media import (
    JSON,
    MULTIPART,
    content_type,
    prefers_html,
    render,
)
from app.http.metrics import Metrics
from app.http.multipart import check_preflight, read_multipart
from app.http.negotiation import RequestHeaders, negotiated
from app.http.outcomes import (
    format_outcome,
    lone_status,
    record,
    unused_points,
    with_throttle_status,
)
from app.http.params import (
    Layout,
    Operation,
    operation_from_query_params,
    operations_from_payload,
    parse_json,
)
from app.http.persisted import persists, resolve_documents, validates
from app.http.planning import Outcome, Planned, plan, validated
from app.http.sse import subscription_response
from app.http.streaming import Emit, StreamedAnswer
from app.http.throttle import (
    Throttled,
    charge,
    rate_headers,
    refund,
    throttle_status,
)
from app.ratelimit import Charge, RateLimitStatus
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


class GraphQLApp:
    """The route's ASGI app (a class: Starlette routes to it as it is): `request_response`
    without its handler of `HTTPException`s, which this endpoint never raises (its refusals are
    answered here), and whose wrapping cost a layer per request (docs/performance.md, issue 12
    round three)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await graphql_endpoint(Request(scope, receive, send))
        await response(scope, receive, send)


async def graphql_endpoint(request: Request) -> Response:
    headers = RequestHeaders(request.scope)
    try:
        return await _dispatch(request, headers)
    except RequestError as error:
        error_type = negotiated(headers.accept).error_type
        return render(error.payload(), error_type, error.status, error.headers)


async def _dispatch(request: Request, headers: RequestHeaders) -> Response:
    settings: Settings = request.app.state.settings
    accept = headers.accept
    negotiation = negotiated(accept)
    # One operation over SSE is a subscription (app/http/sse.py); a batch asking for
    # text/event-stream is a streamed batch answer (app/http/streaming.py, in `_respond`).
    streams = negotiation.event_stream
    method = request.method
    if method in ("GET", "HEAD"):
        if settings.graphiql and "query" not in request.query_params and prefers_html(accept):
            return graphiql_page(request.url.path)
        operation = operation_from_query_params(request.query_params)
        if streams:
            return await _subscription(request, [operation])
        media_type = negotiation.json_type()
        return await _respond(
            request, headers, [operation], Layout(False), media_type, via_get=True
        )
    if method != "POST":
        raise RequestError(
            405,
            f"/graphql answers GET and POST, not {method}.",
            "METHOD_NOT_ALLOWED",
            headers={"Allow": ALLOWED_METHODS},
        )
    media_type = negotiation.json_type()
    kind, params = content_type(headers.content_type)
    if kind == JSON:
        charset = params.get("charset", "utf-8").lower()
        if charset not in ("utf-8", "utf8"):
            raise _unsupported(f"application/json with charset={charset}")
        payload = await _read_json(request, headers.content_length, settings)
        operations, layout = operations_from_payload(payload, settings)
        if streams and not layout.many:
            return await _subscription(request, operations)
        return await _respond(request, headers, operations, layout, media_type)
    if kind == MULTIPART:
        check_preflight(request, settings)
        spool = UploadSpool(settings.resolved_upload_spool_dir, settings.upload_spool_bytes)
        streamed = False
        try:
            payload = await read_multipart(request, settings, spool, job_files(request.app.state))
            operations, layout = operations_from_payload(payload, settings)
            response = await _respond(request, headers, operations, layout, media_type)
            if isinstance(response, StreamedAnswer):
                # The files are read while the stream runs: closed when it ends, not now.
                response.after.append(spool.close)
                streamed = True
            return response
        finally:
            if not streamed:
                spool.close()
    raise _unsupported(kind or "no Content-Type")


async def _subscription(request: Request, operations: list[Operation]) -> Response:
    """GraphQL over SSE (app/http/sse.py), with a persisted document's text filled in first."""
    state = request.app.state
    await admit(request, operations, state.executor, state.settings, charged=True)
    resolved = await resolve_documents(operations, state.documents, validates(state.executor))
    return await subscription_response(request, resolved)


async def _respond(
    request: Request,
    headers: RequestHeaders,
    operations: list[Operation],
    layout: Layout,
    media_type: str,
    *,
    via_get: bool = False,
) -> Response:
    app_state = request.app.state
    mode = cost_mode(headers.cost)
    executor: Executor = app_state.executor
    settings: Settings = app_state.settings
    await admit(request, operations, executor, settings, charged=mode != "validate")
    documents = app_state.documents
    if persists(operations, documents):
        operations = await resolve_documents(operations, documents, validates(executor))
    planned: list[Planned] = []
    for operation in operations:
        key = operation.request.cache_key if operation.request is not None else None
        fresh = isinstance(key, str) and not executor.is_cached(key)
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
    metrics: Metrics = app_state.metrics
    metrics.record_costs(planned)
    cost = sum(item.requested_cost for item in planned)
    check_request_cost(
        planned, cost, settings, metrics
    )  # before any charge: a refusal costs nothing
    charged = None
    # validate: nothing runs, nothing is charged; no limiter: nothing is ever charged.
    if mode != "validate" and app_state.rate_limiter is not None:
        try:
            charged = await charge(request, cost, api="graphql", operations=len(planned))
        except Throttled as refusal:  # nothing of the request runs
            raise refusal.request_error() from None
    batch = _Batch(request, operations, planned, mode, charged, layout)
    stream = negotiated(headers.accept).streamed_type(batch=layout.many)
    if stream is not None:
        # Everything that refuses the request whole has been checked: from here on, 200.
        return StreamedAnswer(stream, batch.stream, rate_headers(batch.budget), batch.after_answer)
    try:
        return await batch.answer(media_type)
    finally:
        # The results and loaders are gone with the answer: what waited for that runs now.
        for action in batch.after_answer:
            action()


class _Batch:
    """The operations of one request, planned and charged, to answer whole or stream."""

    def __init__(
        self,
        request: Request,
        operations: list[Operation],
        planned: list[Planned],
        mode: str | None,
        charged: Charge | None,
        layout: Layout,
    ) -> None:
        self.request = request
        self.operations = operations
        self.planned = planned
        self.mode = mode
        self.charged = charged
        self.layout = layout
        self.after_answer: list[Callable[[], None]] = []

    @property
    def budget(self) -> RateLimitStatus | None:
        return self.charged.status if self.charged is not None else None

    async def run(self, on_done: OnDone | None = None) -> list[Outcome]:
        if self.mode == "validate":
            outcomes = validated(self.planned)
            if on_done is not None:
                for index, outcome in enumerate(outcomes):
                    on_done(index, outcome)
        else:
            app_state = self.request.app.state
            settings = app_state.settings
            context = Context.create(
                app_state.engine,
                settings,
                reader=app_state.reader,
                request=self.request,
                caller=caller_of(self.request),
                request_id=request_id_of(self.request),
                rate_limit=self.budget,
                after_answer=self.after_answer,
                jobs=getattr(app_state, "jobs", None),
            )
            receive = self.request.receive
            outcomes = await BatchRunner(app_state.executor, settings).run(
                self.planned, context, lambda: until_disconnected(receive), on_done
            )
            if self.charged is not None:
                # Shopify's refund: what the operations did not use (lists shorter than
                # requested) goes back to the budget; a whole answer's headers and throttle
                # status say what is left after it (a streamed one's were sent before: they say
                # what was charged).
                self.charged = await refund(
                    self.request, self.charged, unused_points(self.planned, outcomes)
                )
        await record(self.request, self.planned, outcomes)
        return outcomes

    def response(self, outcome: Outcome) -> dict[str, Any]:
        formatted = format_outcome(outcome)
        budget = self.budget
        return (
            formatted
            if budget is None
            else with_throttle_status(formatted, throttle_status(budget))
        )

    async def answer(self, media_type: str) -> Response:
        outcomes = await self.run()
        headers = rate_headers(self.budget) or None
        if self.layout.many:
            entries = [
                self.layout.entry(operation, self.response(outcome))
                for operation, outcome in zip(self.operations, outcomes, strict=True)
            ]
            return render(entries, media_type, headers=headers)
        status = lone_status(outcomes[0], media_type)
        return render(self.response(outcomes[0]), media_type, status, headers)

    async def stream(self, emit: Emit) -> None:
        layout, operations = self.layout, self.operations
        # Every entry is tagged with its place (the draft's index fields), a plain batch too.
        tagged = Layout(layout.batch, layout.many)

        def on_done(index: int, outcome: Outcome) -> None:
            emit(tagged.entry(operations[index], self.response(outcome)))

        await self.run(on_done)


async def until_disconnected(receive: Receive) -> None:
    """Return once the client has gone. The body has been read by now (or there is none), so
    what `receive` gives next is the disconnection; any leftover body message is skipped."""
    while (await receive())["type"] != "http.disconnect":
        pass


def cost_mode(value: str | None) -> str | None:
    """The `GraphQL-Cost` request header (Hot Chocolate's): `report` (the default: run and
    report) or `validate` (cost only, run nothing). Anything else is a 400 naming both."""
    if value is None:
        return None
    mode = value.strip().lower()
    if mode not in ("report", "validate"):
        raise bad_request(
            f"The {COST_HEADER} header must be `report` (run, and report the cost) or "
            f"`validate` (report the cost, run nothing), not {value!r}."
        )
    return mode


def check_request_cost(
    planned: list[Planned], total: int, settings: Settings, metrics: Metrics
) -> None:
    """Refuse the whole request, before anything runs, when its operations together cost more
    (`total`) than `max_request_cost` (operations already refused add nothing)."""
    limit = settings.max_request_cost
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


async def _read_json(request: Request, declared: str | None, settings: Settings) -> Any:
    # A JSON body is the `operations` of a request without files: the smaller of both limits holds.
    if settings.max_operations_bytes <= settings.max_body_bytes:
        setting, limit = "max_operations_bytes", settings.max_operations_bytes
    else:
        setting, limit = "max_body_bytes", settings.max_body_bytes

    def refusal() -> RequestError:
        return too_large("The JSON body is too large", "BODY_TOO_LARGE", setting, limit)

    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise refusal()
    # Straight from `receive` (Starlette's `request.stream()` is an async generator, and most
    # bodies come in one message: no copy then).
    receive = request.receive
    body: bytes | bytearray = b""
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                if body:
                    if not isinstance(body, bytearray):
                        body = bytearray(body)
                    body += chunk
                else:
                    body = chunk
                if len(body) > limit:
                    raise refusal()
            if not message.get("more_body", False):
                break
        elif kind == "http.disconnect":
            raise bad_request("The client disconnected before the body was complete.")
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
