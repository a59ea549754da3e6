"""Running the operations of one HTTP request: concurrently, answered in the order sent.

- Every operation is planned first (app/http/planning.py: parsed and validated through the
  executor's cache, its type found, its cost checked); one that cannot run gets its outcome
  there, and the others are unaffected.
- Query operations share one context, hence one set of loaders: K queries asking for the same
  rows cost the statements of one. Identical query operations (same document, operation name and
  variables) are executed once and their result answered at each position.
- Each mutation gets loaders of its own, made when it starts, so it never reads a value cached
  before its write. When a mutation finishes, the queries' loaders are replaced: anything loaded
  after a write is loaded again.
- All operations start together (a task each), at most `batch_concurrency` at a time when that
  is set. With `batch_mutations = "serial"` the mutations run one after another in the order sent
  (queries still run alongside them).
- The request has a deadline (`execution_timeout_seconds`): operations still running then are
  cancelled and answered with a `TIMEOUT` error, those already done keep their answers. When the
  client disconnects (`http.disconnect` on the ASGI `receive`), every operation still running is
  cancelled. Either way the request's batch loads are cancelled with them, so no SQL
  runs for an answer nobody will read; and when the request is answered, any batch load still
  running for it (work an operation abandoned) is cancelled too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Generator, Hashable
from typing import Any, Generic, TypeVar

import orjson
from graphql import ExecutionResult, GraphQLError, OperationType

from app.db.faults import database_fault
from app.http.faults import log_fault
from app.http.planning import Outcome, Planned, operation_cost
from app.settings import Settings
from schema.context import Context
from schema.execution import (
    INTERNAL_ERROR_MESSAGE,
    Executor,
    database_error,
)
from schema.guards import NODE_LIMIT_CODE
from schema.rate_limit import OperationRoot

logger = logging.getLogger("batchery.http")
T = TypeVar("T")

TIMEOUT_CODE = "TIMEOUT"
TIMEOUT_SETTING = "BATCHERY_EXECUTION_TIMEOUT_SECONDS"
# Why an operation was stopped, as the metrics label it.
STOPPED_TIMEOUT = "timeout"
STOPPED_DISCONNECT = "cancelled"
STOPPED_NODE_LIMIT = "node_limit"

# Waits until the client has gone (the ASGI `receive` gave `http.disconnect`).
Disconnected = Callable[[], Awaitable[None]]
# Told each operation's outcome (by its index) as soon as it is known: a streamed answer writes it.
OnDone = Callable[[int, "Outcome"], None]


class BatchRunner:
    def __init__(self, executor: Executor, settings: Settings) -> None:
        self.executor = executor
        self.settings = settings

    async def run(
        self,
        planned: list[Planned],
        context: Context,
        disconnected: Disconnected | None = None,
        on_done: OnDone | None = None,
    ) -> list[Outcome]:
        """Run every operation not answered yet; `context` is the one the queries share.
        `disconnected`, when given, returns once the client has gone; `on_done`, when given, is
        told each outcome as soon as it is known (those answered in planning first)."""
        lone = planned[0] if len(planned) == 1 else None
        if lone is not None and lone.outcome is None and lone.kind is OperationType.QUERY:
            return [await self._run_lone_query(lone, context, disconnected, on_done)]
        outcomes: list[Outcome | None] = [p.outcome for p in planned]

        def done(index: int, outcome: Outcome) -> None:
            outcomes[index] = outcome
            if on_done is not None:
                on_done(index, outcome)

        if on_done is not None:
            for index, known in enumerate(outcomes):
                if known is not None:
                    on_done(index, known)
        limiter = (
            asyncio.Semaphore(self.settings.batch_concurrency)
            if self.settings.batch_concurrency > 0
            else None
        )
        queries: dict[Hashable, list[int]] = {}
        mutations: list[int] = []
        for index, item in enumerate(planned):
            if item.outcome is not None:
                continue
            if item.kind is OperationType.QUERY:
                key = _same_query_key(item, index) if len(planned) > 1 else index
                queries.setdefault(key, []).append(index)
            else:
                mutations.append(index)

        async def run_query(indexes: list[int]) -> None:
            outcome = await self._execute(planned[indexes[0]], context, limiter)
            for index in indexes:
                done(index, outcome)

        async def run_mutation(index: int) -> None:
            try:
                done(
                    index,
                    await self._execute(planned[index], context.with_fresh_loaders(), limiter),
                )
            finally:
                # What the queries cached may predate this write: later loads go to the database.
                context.renew_loaders()

        async def run_mutations_in_order() -> None:
            for index in mutations:
                await run_mutation(index)

        jobs = [run_query(indexes) for indexes in queries.values()]
        if self.settings.batch_mutations == "serial":
            jobs.append(run_mutations_in_order())
        else:
            jobs.extend(run_mutation(index) for index in mutations)
        try:
            stopped = await self._supervise(jobs, disconnected, context)
        finally:
            # Whatever batch an abandoned branch left running (nobody will read it now).
            context.cancel_loads(close=False)
        if stopped is not None:
            for index, item in enumerate(planned):
                if outcomes[index] is None:
                    done(index, _stopped(item, stopped, self.settings))
        assert all(outcome is not None for outcome in outcomes)
        return outcomes  # type: ignore[return-value]

    async def _run_lone_query(
        self,
        item: Planned,
        context: Context,
        disconnected: Disconnected | None,
        on_done: OnDone | None,
    ) -> Outcome:
        """`run` for a request of one query (the usual case): nothing to group or order, no
        concurrency to limit, and the operation itself is the supervised job."""
        try:
            stopped, outcome = await self._supervise_one(
                self._execute(item, context, None), disconnected, context
            )
        finally:
            # Whatever batch an abandoned branch left running (nobody will read it now).
            context.cancel_loads(close=False)
        if stopped is not None:
            outcome = _stopped(item, stopped, self.settings)
        assert outcome is not None
        if on_done is not None:
            on_done(0, outcome)
        return outcome

    async def _supervise(
        self,
        jobs: list[Coroutine[Any, Any, None]],
        disconnected: Disconnected | None,
        context: Context,
    ) -> str | None:
        """Run `jobs` to their end, the deadline, or the client's leaving, whichever comes first;
        return why they were stopped (None: they all finished)."""
        if len(jobs) == 1:
            return (await self._supervise_one(jobs[0], disconnected, context))[0]
        tasks = [asyncio.ensure_future(job) for job in jobs]
        if not tasks:
            return None
        everything = tasks[0] if len(tasks) == 1 else asyncio.gather(*tasks)
        watcher = asyncio.ensure_future(disconnected()) if disconnected is not None else None
        timeout = self.settings.execution_timeout_seconds
        try:
            done, _ = await asyncio.wait(
                (everything,) if watcher is None else (everything, watcher),
                timeout=timeout if timeout > 0 else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if everything in done:
                everything.result()  # a fault outside any operation surfaces here
                return None
            stopped = STOPPED_DISCONNECT if watcher is not None and watcher in done else None
            return stopped or STOPPED_TIMEOUT
        finally:
            if watcher is not None:
                watcher.cancel()
            if not everything.done():
                everything.cancel()  # every task of the request (a gather cancels its children)
                # The request's batch loads go too, those about to start included.
                context.cancel_loads()
                await asyncio.gather(*tasks, return_exceptions=True)
            if everything.done() and not everything.cancelled():
                # A cancelled gather ends with a CancelledError as its exception: read it, or
                # asyncio logs "exception was never retrieved" for every batch a client left.
                everything.exception()

    async def _supervise_one(
        self,
        job: Coroutine[Any, Any, T],
        disconnected: Disconnected | None,
        context: Context,
    ) -> tuple[str | None, T | None]:
        """`_supervise` for a request of one operation (the usual case): the job runs in the
        request's own task instead of one of its own, the deadline is `asyncio.timeout`'s and the
        client's leaving cancels this task. A task less per request, and a turn of the event
        loop less (the hello profile: docs/performance.md). Returns why the job was stopped
        (None: it was not) and what it returned (None if it was stopped)."""
        timeout = self.settings.execution_timeout_seconds
        # The deadline counts from here, the first step included.
        deadline_at = asyncio.get_running_loop().time() + timeout if timeout > 0 else None
        # Its first step inline: an operation that needs no I/O (`{ __typename }`, a cached
        # answer) ends in it, and then neither its client nor its deadline could have stopped
        # it, for it never gave them a turn; no watcher task is started for it (docs/
        # performance.md, issue 12 round three).
        try:
            waiting = job.send(None)
        except StopIteration as finished:
            return None, finished.value
        except asyncio.CancelledError:
            context.cancel_loads()  # as below: not ours, for no turn was given yet
            raise
        resumed: _Resumed[T] = _Resumed(job, waiting)
        deadline = asyncio.timeout_at(deadline_at)
        current = asyncio.current_task()
        assert current is not None
        left, running = False, True

        def client_left(watcher: asyncio.Future[None]) -> None:
            nonlocal left
            # `running`: a callback scheduled just before the job ended must not cancel what
            # the request does next.
            if running and not watcher.cancelled():
                left = True
                current.cancel()

        watcher = asyncio.ensure_future(disconnected()) if disconnected is not None else None
        if watcher is not None:
            watcher.add_done_callback(client_left)
        stopped: str | None = None
        value: T | None = None
        try:
            async with deadline:
                value = await resumed
        except TimeoutError:
            if not deadline.expired():
                raise  # the operation's own error, not the deadline: a fault, as from a task
            stopped = STOPPED_TIMEOUT
        except asyncio.CancelledError:
            # Ours (the client left) unless someone else cancelled the request too.
            if not left or current.uncancel() > 0:
                context.cancel_loads()
                raise
            stopped = STOPPED_DISCONNECT
        finally:
            running = False
            if watcher is not None:
                watcher.remove_done_callback(client_left)
                watcher.cancel()
                if watcher.done() and not watcher.cancelled():
                    watcher.exception()  # read: never "exception was never retrieved"
        if stopped is not None:
            # The request's batch loads go too, those about to start included; one turn of
            # the loop lets them see it before the answer goes (as awaiting a job's task does).
            context.cancel_loads()
            await asyncio.sleep(0)
        return stopped, value

    async def _execute(
        self, item: Planned, context: Context, limiter: asyncio.Semaphore | None
    ) -> Outcome:
        assert item.prepared is not None and item.request is not None
        if limiter is not None:
            async with limiter:
                return await self._execute(item, context, None)
        try:
            root = OperationRoot(item.requested_cost)
            result = await self.executor.execute(item.prepared, item.request, context, root)
        except Exception as failure:
            # A fault outside any resolver: this operation fails alone, the batch goes on.
            fault = database_fault(failure)
            if fault is not None:
                log_fault(fault, failure)
                return Outcome(ExecutionResult(None, [database_error(fault)]), item.kind)
            logger.exception("operation %r failed", item.request.operation_name)
            error = GraphQLError(
                INTERNAL_ERROR_MESSAGE, extensions={"code": "INTERNAL_SERVER_ERROR"}
            )
            return Outcome(
                ExecutionResult(None, [error]), item.kind, cost=operation_cost(item, None)
            )
        if result.data is None and result.errors and all(e.path is None for e in result.errors):
            if _code(result.errors[0]) == NODE_LIMIT_CODE:
                return Outcome(
                    result, item.kind, stopped=STOPPED_NODE_LIMIT, cost=operation_cost(item, None)
                )
            # Errors before execution began: the variables could not be coerced.
            return Outcome(
                result,
                item.kind,
                rejected=True,
                code="BAD_USER_INPUT",
                cost=operation_cost(item, None),
            )
        return Outcome(result, item.kind, cost=operation_cost(item, result))


class _Resumed(Generic[T]):
    """Awaiting it goes on with a coroutine that was stepped once by hand and then suspended on
    `waiting` (what it yielded: the future it waits for, or None for a bare turn): `yield from`
    for a coroutine already started, throws (cancellation) included."""

    __slots__ = ("job", "waiting")

    def __init__(self, job: Coroutine[Any, Any, T], waiting: Any) -> None:
        self.job = job
        self.waiting = waiting

    def __await__(self) -> Generator[Any, None, T]:
        job, waiting = self.job, self.waiting
        while True:
            try:
                yield waiting
            except GeneratorExit:
                job.close()
                raise
            except BaseException as error:
                try:
                    waiting = job.throw(error)
                except StopIteration as finished:
                    return finished.value  # type: ignore[no-any-return]
            else:
                try:
                    waiting = job.send(None)
                except StopIteration as finished:
                    return finished.value  # type: ignore[no-any-return]


def _code(error: GraphQLError) -> object:
    return (error.extensions or {}).get("code")


def _stopped(item: Planned, why: str, settings: Settings) -> Outcome:
    if why == STOPPED_TIMEOUT:
        message = (
            f"The operation did not finish within {settings.execution_timeout_seconds:g} s, the "
            f"server's execution deadline ({TIMEOUT_SETTING}), and was cancelled: ask for less "
            "or split the request. A mutation cancelled before it committed wrote nothing."
        )
        error = GraphQLError(message, extensions={"code": TIMEOUT_CODE})
    else:
        error = GraphQLError(
            "The client disconnected: the operation was cancelled.",
            extensions={"code": "CLIENT_DISCONNECTED"},
        )
    return Outcome(
        ExecutionResult(None, [error]), item.kind, stopped=why, cost=operation_cost(item, None)
    )


def _same_query_key(item: Planned, index: int) -> Hashable:
    request = item.request
    assert request is not None
    try:
        variables = orjson.dumps(request.variables, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # values JSON cannot hold (an upload): never shared
        return ("unique", index)
    return (request.query, request.operation_name, variables)
