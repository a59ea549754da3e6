"""Running a compiled plan: a whole level of the query at a time.

Where graphql-core resolves field by field - a coroutine, a task and a loader future for every
batch field of every parent - this runs each batch field once per level: it collects the parents,
loads them all with one `load_level` call on the request's loader (so batching across the
operations of an HTTP request still works), and builds the children's dictionaries with generated
code (completion.py). Sibling batch fields run concurrently, and a batch field's children start as
soon as it is done, as graphql-core's tasks do. A part of the response met at several positions is
run once (sharing.py).

The pending work of a level - the batch fields met while building it, with their parents - is an
accumulator passed down explicitly to whatever registers into it, never state on the `Run`: levels
run concurrently and give the event loop turns, so a shared attribute would mix them up.

Every value built spends the operation's node budget (schema/guards.py): lists in bulk, objects one
by one; a large level gives the event loop a turn every few milliseconds.

Errors follow graphql-core to the letter: the same `located_error`s, the same messages, null
propagation to the nearest nullable position, and graphql-core's rule that an error is dropped when
its position is already inside a nulled part of the response (`CollectedErrors.add`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Coroutine, Iterable
from typing import Any

import strawberry
from graphql import ExecutionResult, GraphQLError
from graphql.pyutils import Path, gather_with_cancel, is_awaitable

from loaders.dataloader import SafeDataLoader
from loaders.field import level_loader
from schema.compiled.arguments import Arguments
from schema.compiled.completion import Built, Completion, close
from schema.compiled.model import FieldPlan, Kind, ObjectPlan, OperationPlan
from schema.compiled.positions import Collected, Position
from schema.compiled.request import OperationInput
from schema.compiled.sharing import Item, Ledger, Level, Marker, Share
from schema.guards import NodeBudget, NodeLimitExceeded

# Fields answered together, their parents (and markers), and the loader (or why there is none).
Batch = tuple[list[FieldPlan], list[Item], "SafeDataLoader[Any, Any] | Exception"]


class Run(Completion):
    """One execution of a plan (completing values: completion.py)."""

    __slots__ = ("args", "budget", "collected", "data", "input", "plan", "schema", "shared")

    def __init__(
        self,
        plan: OperationPlan,
        run_input: OperationInput,
        schema: strawberry.Schema,
        budget: NodeBudget,
    ) -> None:
        self.plan = plan
        self.input = run_input
        self.schema = schema
        self.budget = budget
        self.collected = Collected()
        self.data: dict[str, Any] = {}
        self.args = Arguments(schema, run_input.variable_values)
        # Response parts built by the fast path, by selection and source object: the same object
        # (a supplier shared by bakeries, the bakery of many orders) met again under the same
        # selection gives the same JSON, so it is built once and referenced (see sharing.py).
        self.shared: dict[tuple[ObjectPlan, int], Built] = {}

    # ---- the operation ----

    async def execute(self) -> ExecutionResult:
        root = self.plan.root
        data = self.data
        # What is left to do for each root field, in field order (graphql-core gathers them so).
        work: list[Coroutine[Any, Any, None]] = []
        started: list[Awaitable[Any]] = []
        try:
            for field in root.fields:
                outcome = self._start_root_field(field)
                if is_awaitable(outcome):
                    data[field.key] = None  # keeps the key's place in the response
                    started.append(outcome)
                    work.append(self._finish_root_field(field, outcome))
                elif outcome is not None and outcome.fields:
                    work.append(self.run_pending(outcome))
        except (GraphQLError, NodeLimitExceeded) as error:
            # A non-null root field failed, or the budget ran out, without awaiting anything.
            for coroutine in work:
                coroutine.close()
            for awaitable in started:
                close(awaitable)
            if isinstance(error, NodeLimitExceeded):
                raise
            self.collected.add(error, ())
            return ExecutionResult(None, self.collected.errors)
        if len(work) == 1:
            await work[0]
        elif work:
            await gather_with_cancel(*work)
        errors = self.collected.errors
        if self.collected.root_nulled:
            return ExecutionResult(None, errors)
        return ExecutionResult(data, errors or None)

    def _start_root_field(self, field: FieldPlan) -> Any:
        """Call a root resolver: its awaitable, or the batch fields its synchronous value left."""
        root_type = self.plan.root.type
        position: Position = (field.key,)
        if field.kind is Kind.TYPENAME:
            self.data[field.key] = root_type.name
            return None
        try:
            args = self.args.graphql(field)
            info = self.input.resolve_info(
                field.definition, field.nodes, root_type, Path(None, field.key, root_type.name)
            )
            resolve = field.definition.resolve
            assert resolve is not None
            result = resolve(self.input.root_value, info, **args)
            if is_awaitable(result):
                return result
            level = Level()
            self.data[field.key] = self.complete_value(field, result, position, level)
            return level
        except Exception as raw:
            self.field_error(raw, field.type, field, position)  # raises when non-null
            self.data[field.key] = None
            return None

    async def _finish_root_field(self, field: FieldPlan, awaitable: Awaitable[Any]) -> None:
        position: Position = (field.key,)
        level = Level()
        try:
            value = await awaitable
            completed = self.complete_value(field, value, position, level)
        except Exception as raw:
            try:
                self.field_error(raw, field.type, field, position)
            except GraphQLError as error:
                self.collected.add(error, ())
            return
        if not self.collected.root_nulled:
            self.data[field.key] = completed
            await self.run_pending(level)

    # ---- levels ----

    async def run_pending(self, level: Level) -> None:
        if not level.fields or self.collected.root_nulled:
            return
        batches = self.batches(level)
        if len(batches) == 1:
            await self.run_batch(*batches[0])
            return
        # The first failure (only the node budget's can get here) cancels the sibling batches.
        await gather_with_cancel(*(self.run_batch(*batch) for batch in batches))

    def batches(self, level: Level) -> list[Batch]:
        """One batch per loader: sibling fields of the same parents that share a loader (aliases
        of one field, say) are one batch, answered parent by parent as graphql-core's waiters
        are woken, so their errors come in the same order."""
        batches: list[Batch] = []
        for field, entries in level.fields.items():
            assert field.spec is not None
            first = entries[0]  # never a marker: a marker follows its canonical entries
            assert isinstance(first, tuple)
            info = self.strawberry_info(field, (*first[2], field.key))
            try:
                kwargs = self.args.python(field, info)
                loader: SafeDataLoader[Any, Any] | Exception = level_loader(
                    field.spec, field.many, info, kwargs
                )
            except Exception as error:
                loader = error
            for fields, others, shared in batches:
                if (
                    shared is loader
                    and fields[0].owner is field.owner
                    and len(others) == len(entries)
                ):
                    fields.append(field)
                    break
            else:
                batches.append(([field], entries, loader))
        return batches

    async def run_batch(
        self,
        fields: list[FieldPlan],
        items: list[Item],
        loader: SafeDataLoader[Any, Any] | Exception,
    ) -> None:
        """Resolve `fields` for every parent of a level with one call of their batch function."""
        if self.collected.root_nulled:
            return
        sources = [item[0] for item in items if item.__class__ is tuple]
        values: list[Any]
        if isinstance(loader, Exception):
            values = [loader] * len(sources)
        else:
            try:
                values = await loader.load_level(sources)
            except Exception as error:
                values = [error] * len(sources)
        level = Level()
        ledger = Ledger()
        work: Iterable[tuple[Item, Any]]
        if len(sources) == len(items):
            work = zip(items, values, strict=True)
        else:  # markers have no value of their own
            loaded = iter(values)
            values = [next(loaded) if item.__class__ is tuple else None for item in items]
            work = ledger.walk(items, values)
        budget = self.budget
        collected = self.collected
        used = events = 0
        last: Share | None = None
        watched: tuple[Share, ...] = ()
        for item, value in work:
            while budget.used >= budget.next_check and budget.should_yield():
                await budget.pause()
                if collected.root_nulled:
                    return
            if item.__class__ is Marker:
                assert isinstance(item, Marker)
                self.replay(item, ledger, level)
                continue
            _, out, position, share = item  # type: ignore[misc]
            if share is not last:  # (the entries of one share come together)
                last = share
                watched = ledger.watch(share)
                level.share = share
            if collected.nulled and collected.is_nulled(position):
                if watched:
                    ledger.skip(watched, item, value)
                continue
            if watched:
                used, events = budget.used, collected.events
            for field in fields:
                if collected.nulled and collected.is_nulled(position):
                    break
                field_position = (*position, field.key)
                try:
                    out[field.key] = self.complete_value(field, value, field_position, level)
                except Exception as raw:
                    try:
                        self.field_error(raw, field.type, field, field_position)
                        out[field.key] = None
                    except GraphQLError as error:
                        self.propagate(error, position)
            if watched:
                dirty = collected.events != events
                ledger.note(watched, item, value, budget.used - used, dirty)
        await self.run_pending(level)

    def replay(self, marker: Marker, ledger: Ledger, level: Level) -> None:
        """A position whose subtree is a shared one that met no error at this level: it costs
        the nodes the canonical subtree spent, and goes on to the next level."""
        noted = ledger.get(marker.share)
        if noted is None:  # nothing of the shared part at this level
            return
        watched = ledger.watch(marker.context)
        if self.collected.nulled and self.collected.is_nulled(marker.root):
            if watched:
                ledger.skip(watched, marker, None)
            return
        self.budget.spend(noted.nodes)
        if watched:
            ledger.note(watched, marker, None, noted.nodes, False)
        for items in level.fields.values():
            items.append(marker)

    def strawberry_info(self, field: FieldPlan, position: Position) -> Any:
        raw = self.input.resolve_info(
            field.definition, field.nodes, field.parent_type, self.graphql_path(position)
        )
        assert field.strawberry_field is not None
        return self.schema.config.info_class(_raw_info=raw, _field=field.strawberry_field)
