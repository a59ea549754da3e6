"""GraphQL over Server-Sent Events, "distinct connections" mode (the graphql-sse protocol), which
Strawberry's view does not give us on our own transport.

A client asks for `text/event-stream` (`Accept`) on `GET /graphql?query=...` or `POST /graphql`
with a JSON body holding one subscription operation; the response is a stream of

    event: next
    data: {"data": {...}}

events, one per result, then `event: complete`. One connection carries one subscription; closing
it ends the subscription (sse-starlette watches for the disconnect and cancels the stream, which
closes the resolver's generator). A subscription refused before it starts (document limits,
validation, scopes, cost, rate limit) is not a stream: it gets the ordinary JSON error response
with its status (400, 401, 403, 429), so `curl` shows why. Comments (`: ping`) keep proxies from
closing a quiet stream. When the server shuts down, every stream ends at once as a complete
response (`event_stream`), so clients see a clean end and reconnect elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import anyio
import orjson
from graphql import ExecutionResult
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response

from app.http.access import caller_of, request_id_of
from app.http.errors import RequestError, bad_request
from app.http.media import parse_accept
from app.http.params import Operation
from app.http.subscriptions import open_stream
from schema.context import Context
from schema.subscriptions import Refused

EVENT_STREAM = "text/event-stream"
# How long a stream may take to end once the server shuts down (it ends at once: see until_set).
SHUTDOWN_GRACE_SECONDS = 2.0
PING_SECONDS = 15
T = TypeVar("T")
STATUS_OF_CODE = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "THROTTLED": 429}


def wants_event_stream(accept: str | None) -> bool:
    """True when `Accept` ranks text/event-stream above (or level with) every JSON type."""
    ranges = parse_accept(accept)
    stream = max((r.quality for r in ranges if r.media_type == EVENT_STREAM), default=0.0)
    others = max((r.quality for r in ranges if r.media_type != EVENT_STREAM), default=0.0)
    return stream > 0 and stream >= others


async def subscription_response(request: Request, operations: list[Operation]) -> Response:
    if len(operations) != 1:
        raise bad_request(
            "A text/event-stream request carries one subscription operation, not a batch: "
            "open one stream per subscription."
        )
    operation = operations[0]
    if operation.request is None:
        # With its own code: PERSISTED_QUERY_NOT_FOUND (which APQ clients answer with the
        # text), DOCUMENT_NOT_TRUSTED, BAD_REQUEST.
        raise RequestError(
            400, operation.problem or "The operation has no `query`.", operation.code
        )
    state = request.app.state
    context = Context.create(
        state.engine,
        state.settings,
        reader=state.reader,
        request=request,
        caller=caller_of(request),
        request_id=request_id_of(request),
        jobs=getattr(state, "jobs", None),
    )
    started = await open_stream(request, operation.request, context)
    if isinstance(started, Refused):
        first = started.errors[0]
        code = str((first.extensions or {}).get("code", "BAD_REQUEST"))
        error = RequestError(STATUS_OF_CODE.get(code, 400), first.message, code)
        error.extensions = {k: v for k, v in (first.extensions or {}).items() if k != "code"}
        raise error
    return event_stream(graphql_events(started))


async def graphql_events(results: AsyncIterator[ExecutionResult]) -> AsyncIterator[ServerSentEvent]:
    try:
        async for result in results:
            yield ServerSentEvent(json_data(format_result(result)), event="next")
        yield ServerSentEvent("", event="complete")
    finally:
        aclose = getattr(results, "aclose", None)
        if aclose is not None:
            await aclose()


def format_result(result: ExecutionResult) -> dict[str, Any]:
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return payload


def json_data(value: Any) -> str:
    return orjson.dumps(value).decode()


def event_stream(events: AsyncIterator[ServerSentEvent]) -> Response:
    """The response streaming `events`; the client's disconnect cancels (and closes) them. When
    the server shuts down, the stream ends cleanly at once (the client reconnects to another
    process) instead of being cut off mid-response when the shutdown grace runs out."""
    shutdown = anyio.Event()
    return EventSourceResponse(
        until_set(events, shutdown),
        ping=PING_SECONDS,
        headers={"Cache-Control": "no-cache"},
        shutdown_event=shutdown,
        shutdown_grace_period=SHUTDOWN_GRACE_SECONDS,
    )


async def until_set(events: AsyncIterator[T], stop: anyio.Event) -> AsyncIterator[T]:
    """`events` until they end or `stop` is set, whichever comes first.

    `events` is iterated, and closed, by one task of its own, so a generator that holds a
    context across its yields (a subscription to the progress bus) enters and leaves it in the
    same task, whoever stops it and when."""
    queue: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue(maxsize=1)

    async def produce() -> None:
        failure: BaseException | None = None
        try:
            async for event in events:
                await queue.put((False, event))
        except Exception as error:  # handed to the reader, raised there
            failure = error
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
        await queue.put((True, failure))

    producer = asyncio.create_task(produce())
    stopped = asyncio.ensure_future(stop.wait())
    getter: asyncio.Future[tuple[bool, Any]] | None = None
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                return  # the server is shutting down: end the stream cleanly now
            ended, value = getter.result()
            if ended:
                if value is not None:
                    raise value
                return
            yield value
    finally:
        for future in (getter, stopped, producer):
            if future is not None:
                future.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer
