"""Runtime guards of one operation: a budget of result nodes, and turns given to the event loop.

Static cost analysis estimates what an operation will cost; this counts what it does, so it holds
when the estimate is wrong. Both executors (the compiled one and graphql-core) spend the same
budget as they build the result:

- **What counts as a node**: every item of a list (an object, a scalar, a null, a nested list),
  and every object that is not a list item. `{ bakeries { name orders { id } } }` on 50 bakeries
  of 50 orders is 50 + 50 x 50 = 2,550 nodes. The root object and scalar fields do not count.
  An object that appears several times in the response counts each time (it is serialised each
  time).
- Lists are counted in bulk, as a whole (one addition per list), objects one by one.
- Over the limit, `NodeLimitExceeded` ends the operation: the executors let it through their
  field-error handling (it is never a field error), sibling work is cancelled, the partial result
  is dropped (`data: null`) and with it the memory it held.

A long synchronous stretch of building would keep every other request of the worker waiting, so
the budget also says when to give the event loop a turn: the builders ask `should_yield()` before
each piece of work (`while ...: await pause()`); it looks at the clock only every `CHECK_EVERY`
nodes, so a small query never pays for it, and says yes once `SLICE_SECONDS` have passed since the
current slice began.

A large result is also what makes the garbage collector slow: a full collection scans every live
object, 35-120 ms with a 240,000-node result alive, several times per such operation, with the
event loop stopped. So while an operation holds more than `LARGE_RESULT_NODES` nodes, automatic
collection is off for the process (`_Collections`), and back on when the last such operation ends:
its objects are freed by reference counting when it ends, and what little cyclic garbage other
requests made meanwhile is collected then.

The slice is the worker's, not the operation's (`_SLICE`, one per process as the event loop is):
the builders that resume in one turn of the loop run one after another before it next polls for
I/O, so only the first of them starts a new slice; the others find it already running and give
the loop a turn again after a little work.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterable, Sized
from typing import Any

from graphql import GraphQLError, GraphQLList, GraphQLObjectType, GraphQLOutputType
from graphql.execution.executor_throwing_on_incremental import ExecutorThrowingOnIncremental
from graphql.pyutils import Path, is_awaitable, is_iterable

NODE_LIMIT_CODE = "NODE_LIMIT_EXCEEDED"
NODE_LIMIT_SETTING = "BATCHERY_MAX_RESULT_NODES"
# Nodes built between two looks at the clock (a look costs ~60 ns; 256 fast-path nodes ~0.3 ms).
CHECK_EVERY = 256
# Longest stretch of building before the event loop gets a turn.
SLICE_SECONDS = 0.005
# Past this many nodes an operation holds the garbage collector off (see above).
LARGE_RESULT_NODES = 20_000


class NodeLimitExceeded(Exception):
    """The operation's result grew past its node budget; the whole operation stops."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The result would have more than {limit:,} nodes (objects and list items), a server "
            f"limit set by {NODE_LIMIT_SETTING}: ask for fewer items (first, limitTo) or fewer "
            "nested levels, or split the operation."
        )
        self.limit = limit

    def as_graphql_error(self) -> GraphQLError:
        return GraphQLError(str(self), extensions={"code": NODE_LIMIT_CODE})


class _Slice:
    __slots__ = ("started",)

    def __init__(self) -> None:
        self.started = time.perf_counter()


_SLICE = _Slice()


class _Collections:
    """Automatic garbage collection, held off while any large result is being built."""

    __slots__ = ("holders", "paused")

    def __init__(self) -> None:
        self.holders = 0
        self.paused = False

    def hold(self) -> None:
        if self.holders == 0 and gc.isenabled():
            gc.disable()
            self.paused = True
        self.holders += 1

    def release(self) -> None:
        self.holders -= 1
        if self.holders == 0 and self.paused:
            self.paused = False
            gc.enable()


_COLLECTIONS = _Collections()


class NodeBudget:
    """The nodes one operation may still build, and when it should give the event loop a turn."""

    __slots__ = ("holds_collector", "limit", "mark", "next_check", "used")

    def __init__(self, limit: int) -> None:
        # 0 means no limit; the counting (and the yielding it drives) still happens.
        self.limit = limit if limit > 0 else 1 << 62
        self.used = 0
        self.next_check = CHECK_EVERY
        # One comparison per spend covers both the limit and the large-result mark.
        self.mark = min(self.limit, LARGE_RESULT_NODES)
        self.holds_collector = False

    def spend(self, count: int) -> None:
        used = self.used + count
        self.used = used
        if used > self.mark:
            self._past_mark()

    def _past_mark(self) -> None:
        if self.used > self.limit:
            raise NodeLimitExceeded(self.limit)
        if not self.holds_collector:
            self.holds_collector = True
            _COLLECTIONS.hold()
        self.mark = self.limit

    def close(self) -> None:
        """The operation has ended (whichever way): let the collector run again."""
        if self.holds_collector:
            self.holds_collector = False
            _COLLECTIONS.release()

    def should_yield(self) -> bool:
        if self.used < self.next_check:
            return False
        self.next_check = self.used + CHECK_EVERY
        return time.perf_counter() - _SLICE.started >= SLICE_SECONDS

    async def pause(self) -> None:
        """Give the event loop a turn (other requests, health probes, I/O), then go on."""
        paused_at = time.perf_counter()
        await asyncio.sleep(0)
        if _SLICE.started <= paused_at:  # the first to resume after the loop polled for I/O
            _SLICE.started = time.perf_counter()
        else:  # another builder has this turn: look at the clock again before any work
            self.next_check = self.used


class GuardedExecutor(ExecutorThrowingOnIncremental):
    """graphql-core's executor (the one `execute` uses) spending a `NodeBudget`.

    Sub-executors are shallow copies, so they share the budget.
    """

    def __init__(self, *args: Any, node_budget: NodeBudget, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.node_budget = node_budget

    def handle_field_error(self, raw_error: Exception, *args: Any, **kwargs: Any) -> None:
        if isinstance(raw_error, NodeLimitExceeded):
            raise raw_error  # not a field error: it ends the operation
        super().handle_field_error(raw_error, *args, **kwargs)

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: Any,
        info: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        if is_iterable(result):
            items: Iterable[Any] = result if isinstance(result, Sized) else list(result)
            budget = self.node_budget
            budget.spend(len(items))  # type: ignore[arg-type]
            if budget.used >= budget.next_check and budget.should_yield():
                return self._complete_list_later(
                    return_type, field_details_list, info, path, items, position_context
                )
            result = items
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )

    async def _complete_list_later(self, *args: Any) -> Any:
        budget = self.node_budget
        await budget.pause()
        while budget.should_yield():
            await budget.pause()
        completed = super().complete_list_value(*args)
        return await completed if is_awaitable(completed) else completed

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        info: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        if path.key.__class__ is not int:  # a list item was counted with its list
            self.node_budget.spend(1)
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )
