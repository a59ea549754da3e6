"""GraphQL subscriptions over WebSocket (`graphql-transport-ws` on `/graphql`), and what the
WebSocket and SSE transports (app/http/sse.py) share.

The WebSocket side is Strawberry's ASGI integration (`strawberry.asgi.GraphQL`), reduced to the
`graphql-transport-ws` protocol, with two of its steps replaced so that a subscription obeys the
rules every other operation obeys:

- **Who**: the key comes from the handshake's `Authorization` header or, since browsers cannot
  set headers on a WebSocket, from the `connection_init` payload (`{"Authorization": "Bearer
  ..."}`). It is checked by `authenticate_key`, like every HTTP request: an unknown, revoked or
  malformed key closes the socket with 4403, a missing key in required mode with 4401, each with
  the reason as its close message.
- **Which document**: the `subscribe` payload is read as an HTTP request's body is
  (`operation_from_object`), and its persisted document resolved against the same store
  (`resolve_documents`): APQ's `extensions.persistedQuery` and `documentId` are looked up, and in
  trusted-documents mode anything outside the manifest is refused (`DOCUMENT_NOT_TRUSTED`), as an
  `error` message for that subscription alone (the socket stays open for the others). Before
  anything is parsed, the subscription is admitted as an HTTP request is (app/http/admission.py:
  new document text within its limit, a client with no budget left refused), and a key presented
  in `connection_init` counts toward its address's refused credentials (app/http/auth_failures.py:
  4429 past the limit).
- **What**: each `subscribe` message runs through `open_stream`: the executor's document limits,
  validation and scopes (schema/subscriptions.py), the cost limit, and the caller's rate-limit
  budget (charged once, the subscription's static cost). Queries and mutations go over HTTP.

Bounds: `BATCHERY_SUBSCRIPTION_MAX_PER_CONNECTION` operations per socket at once (more get an
`error` message naming it), `BATCHERY_SUBSCRIPTION_MAX_SECONDS` per subscription (then a last
result with a `SUBSCRIPTION_TIMEOUT` error, and `complete`), and `connection_init` within
`BATCHERY_SUBSCRIPTION_INIT_TIMEOUT_SECONDS` (else 4408). A client that goes away ends its
streams: their tasks are cancelled and the resolvers' generators closed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from graphql import ExecutionResult, GraphQLError
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)

from app.http.access import (
    CallerUser,
    TooManyFailures,
    Unauthenticated,
    Unverifiable,
    authenticate_key,
)
from app.http.admission import admit
from app.http.auth_failures import count_failure, too_many_failures
from app.http.errors import RequestError
from app.http.params import operation_from_object
from app.http.persisted import resolve_documents, validates
from app.http.throttle import THROTTLED, Throttled, charge
from app.settings import Settings
from schema import schema
from schema.access import Caller
from schema.context import Context
from schema.execution import Executor, GraphQLRequest
from schema.subscriptions import Refused, start_prepared

# A WebSocket close reason is at most 123 bytes (RFC 6455).
MAX_REASON = 120
LIFETIME_SETTING = "BATCHERY_SUBSCRIPTION_MAX_SECONDS"
PER_CONNECTION_SETTING = "BATCHERY_SUBSCRIPTION_MAX_PER_CONNECTION"
# A socket's caller until connection_init names one: no scopes, so nothing could run meanwhile
# (Strawberry closes a socket that subscribes before its connection_ack anyway).
NO_CALLER = Caller("unauthenticated-socket", frozenset())


async def open_stream(
    conn: HTTPConnection, request: GraphQLRequest, context: Context
) -> Refused | AsyncIterator[ExecutionResult]:
    """One subscription's results, bounded in time, or why it was refused (nothing ran)."""
    executor: Executor = conn.app.state.executor
    if request.query is None:
        return Refused((GraphQLError("The subscription has no `query`."),))
    # A persisted document is prepared (and cached) under its id, as over HTTP.
    prepared = executor.prepare(request.query, request.document_id)
    estimate = executor.estimate(prepared, request)
    if prepared.document is not None and executor.over_cost(estimate) is None:
        try:  # charged before it starts: a refusal costs nothing and runs nothing
            await charge(conn, estimate.requested if estimate else 0, api="graphql")
        except Throttled as refusal:
            extensions = {"code": THROTTLED, **refusal.extensions}
            return Refused((GraphQLError(refusal.message, extensions=extensions),))
    started = await start_prepared(executor, prepared, request, context)
    if isinstance(started, Refused):
        return started
    return bounded(started, context.settings.subscription_max_seconds)


async def bounded(
    results: AsyncIterator[ExecutionResult], seconds: float
) -> AsyncIterator[ExecutionResult]:
    """The results until the stream ends or `seconds` have passed (0: no bound); then one last
    result saying so. Closing this closes `results`."""
    iterator = aiter(results)
    deadline = asyncio.get_running_loop().time() + seconds if seconds > 0 else None
    try:
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    result = await anext(iterator)
            except StopAsyncIteration:
                return
            except TimeoutError:
                yield ExecutionResult(None, [lifetime_error(seconds)])
                return
            yield result
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def lifetime_error(seconds: float) -> GraphQLError:
    return GraphQLError(
        f"This subscription reached the longest a subscription may stream, {seconds:g} s: "
        f"subscribe again to go on (a server limit, set by {LIFETIME_SETTING}).",
        extensions={"code": "SUBSCRIPTION_TIMEOUT", "limit": seconds, "setting": LIFETIME_SETTING},
    )


def subscription_context(conn: HTTPConnection) -> Context:
    state = conn.app.state
    return Context.create(
        state.engine,
        state.settings,
        reader=state.reader,
        request=conn,
        caller=NO_CALLER,
        request_id=uuid.uuid4().hex,
        jobs=getattr(state, "jobs", None),
    )


class TransportHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """Strawberry's protocol state machine, with our authentication and our execution."""

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if self.connection_init_received or self.connection_timed_out:
            await super().handle_connection_init(message)  # Strawberry closes it (4429)
            return
        payload = message.get("payload") or {}
        if not isinstance(payload, dict):
            await self.websocket.close(4400, "The connection_init payload must be an object.")
            return
        conn: WebSocket = self.context.request
        header = conn.headers.get("authorization")
        if header is None:
            presented = payload.get("Authorization", payload.get("authorization"))
            header = presented if isinstance(presented, str) else None
        settings = self.context.settings
        try:
            # Key guessing is counted per address here too (app/http/auth_failures.py).
            guessing = await too_many_failures(conn, settings) if header is not None else None
            if guessing is not None:
                raise guessing
            try:
                self.context.caller = await authenticate_key(
                    conn.app.state.engine, settings, header, conn.app.state.tokens
                )
            except Unauthenticated as refused:
                if refused.presented and not isinstance(refused, Unverifiable):
                    await count_failure(conn, settings)
                raise
        except Unauthenticated as refused:
            if self.connection_init_timeout_task:
                self.connection_init_timeout_task.cancel()
            code = 4403 if refused.presented else 4401
            if isinstance(refused, TooManyFailures):
                code = 4429
            await self.websocket.close(code, _reason(refused.message))
            return
        # Who the socket is from now on, for everything that asks the connection (the rate
        # limit's identity, the audit): as `request.user` is for an HTTP request.
        conn.scope["user"] = CallerUser(self.context.caller)
        await super().handle_connection_init(message)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        limit = self.max_subscriptions_per_connection
        if (
            self.connection_acknowledged
            and limit is not None
            and message["id"] not in self.operations
            and len(self.operations) >= limit
        ):
            error = GraphQLError(
                f"This connection already runs {limit} subscriptions, the most one connection "
                f"may run at once: complete one first, or open another connection (a server "
                f"limit, set by {PER_CONNECTION_SETTING}).",
                extensions={
                    "code": "TOO_MANY_SUBSCRIPTIONS",
                    "limit": limit,
                    "setting": PER_CONNECTION_SETTING,
                },
            )
            await self.send_message(
                {"id": message["id"], "type": "error", "payload": [error.formatted]}
            )
            return
        if not self.connection_acknowledged:
            await self.websocket.close(code=4401, reason="Unauthorized")
            return
        if message["id"] in self.operations:
            await self.websocket.close(4409, f"Subscriber for {message['id']} already exists")
            return
        payload: Any = message["payload"]
        if not isinstance(payload, dict):
            await self.handle_invalid_message("The subscribe payload must be an object.")
            return
        # Strawberry's own handler reads only `query` (a KeyError without one): the whole
        # payload is kept, for a persisted document's id and the extensions.
        operation = _Subscription(self, message["id"], payload)
        operation.task = asyncio.create_task(self.run_operation(operation))
        operation.task.add_done_callback(self._task_done)
        self.operations[message["id"]] = operation

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        assert isinstance(operation, _Subscription)
        request = await self._resolve(operation)
        if request is None:
            return
        # Loaders of its own: what another subscription of this socket cached may be stale.
        context = self.context.with_fresh_loaders()
        started = await open_stream(self.context.request, request, context)
        if isinstance(started, Refused):
            await operation.send_initial_errors(list(started.errors))
            return
        try:
            async for result in started:
                await operation.send_next(result)  # type: ignore[arg-type]
        finally:
            await started.aclose()  # type: ignore[attr-defined]
        await operation.send_operation_message({"id": operation.id, "type": "complete"})

    async def _resolve(self, operation: _Subscription) -> GraphQLRequest | None:
        """The subscription's request with its persisted document filled in, as an HTTP
        request's; or None once the refusal was sent (for this subscription alone)."""
        conn: WebSocket = self.context.request
        state = conn.app.state
        read = operation_from_object(operation.payload)
        try:  # what HTTP checks before parsing anything: new text's size, a spent budget
            await admit(conn, [read], state.executor, state.settings, charged=True)
        except RequestError as refused:
            extensions = {"code": refused.code, **refused.extensions}
            await operation.send_initial_errors(
                [GraphQLError(refused.message, extensions=extensions)]
            )
            return None
        (resolved,) = await resolve_documents([read], state.documents, validates(state.executor))
        if resolved.request is None:
            problem = resolved.problem or "The operation has no `query`."
            error = GraphQLError(problem, extensions={"code": resolved.code or "BAD_REQUEST"})
            await operation.send_initial_errors([error])
            return None
        return resolved.request


class _Subscription(Operation[Context, None]):
    """Strawberry's operation, with the subscribe message's whole payload."""

    __slots__ = ("payload",)

    def __init__(
        self, handler: TransportHandler, operation_id: str, payload: dict[str, Any]
    ) -> None:
        query = payload.get("query")
        variables = payload.get("variables")
        name = payload.get("operationName")
        super().__init__(
            handler,
            operation_id,
            query if isinstance(query, str) else "",
            variables if isinstance(variables, dict) else None,
            name if isinstance(name, str) else None,
        )
        self.payload = payload


def _reason(message: str) -> str:
    encoded = message.encode()
    if len(encoded) <= MAX_REASON:
        return message
    return encoded[: MAX_REASON - 3].decode(errors="ignore") + "..."


class SubscriptionSocket(GraphQL[Context, None]):
    """The WebSocket endpoint of `/graphql` (a `WebSocketRoute` beside the HTTP `Route`)."""

    graphql_transport_ws_handler_class = TransportHandler

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(
                seconds=settings.subscription_init_timeout_seconds
            ),
            max_subscriptions_per_connection=settings.subscription_max_per_connection,
            # Pages on the origins CORS allows may open it; other pages are refused (403).
            allowed_origins=settings.cors_origins,
        )

    async def get_context(self, request: Any, response: Any) -> Context:
        return subscription_context(request)
