"""Running a compiled plan: a whole level of the query at a time.

Where graphql-core resolves field by field - a coroutine, a task and a loader future for every
batch field of every parent - this runs each batch field once per level: it collects the parents,
loads them all with one `load_level` call on the request's loader (so batching across the
operations of an HTTP request still works), and builds the children's dictionaries with generated
code. Sibling batch fields run concurrently, and a batch field's children start as soon as it is
done, as graphql-core's tasks do.

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

from collections.abc import Awaitable, Coroutine, Iterable, Sized
from typing import Any

import strawberry
from graphql import ExecutionResult, GraphQLError, GraphQLLeafType, located_error
from graphql.pyutils import Path, Undefined, gather_with_cancel, inspect, is_awaitable, is_iterable

from loaders.dataloader import SafeDataLoader
from loaders.field import level_loader
from schema.compiled.arguments import Arguments
from schema.compiled.codegen import project
from schema.compiled.model import FieldPlan, Kind, ObjectPlan, OperationPlan, TypeRef
from schema.compiled.positions import Collected, Position, graphql_path
from schema.compiled.request import OperationInput
from schema.compiled.sharing import Item, Ledger, Level, Marker, Share
from schema.guards import NodeBudget, NodeLimitExceeded
from schema.rows import Rows

# Fields answered together, their parents (and markers), and the loader (or why there is none).
Batch = tuple[list[FieldPlan], list[Item], "SafeDataLoader[Any, Any] | Exception"]
# Whether a part built once is also run once (see sharing.py); off, its children are run at every
# position it appears at. Only tests and debugging turn it off: they compare the two.
SHARE_SUBTREES = True
# A response part built by the fast path, the share its children were registered under, and the
# value it was built from (kept alive: it is looked up by its id).
Built = tuple[Any, Share | None, Any]


class Run:
    """One execution of a plan."""

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
                _close(awaitable)
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

    # ---- completing values (graphql-core's complete_value, shaped for whole lists) ----

    def complete_value(self, field: FieldPlan, value: Any, position: Position, level: Level) -> Any:
        """A field's completed value; raises like graphql-core when it cannot be completed. The
        batch fields of the objects built are added to `level`."""
        ref = field.type
        item = ref.item
        if item is not None and item.object is not None and value.__class__ is Rows:
            outs = self.project(item.object, value)
            if outs is not None:
                return outs
            value = value.objects()
        if item is not None and value.__class__ is list:
            plan = item.object
            if plan is not None and plan.fast is not None:
                if plan.shareable:
                    built = self.shared.get((plan, id(value)))
                    if built is not None:  # (it was built: the arguments are valid)
                        outs = built[0]
                        self.budget.spend(len(outs))
                        if built[1] is not None:
                            self.reuse(plan, built, position, level, listed=True)
                        return outs
                if self.args.all_valid(plan.batch_fields):
                    try:
                        many = plan.fast.many if item.non_null else plan.fast.many_nullable
                        outs = many(value)
                    except Exception:
                        pass  # the careful path below decides
                    else:
                        self.budget.spend(len(outs))
                        share = None
                        if plan.batch_fields:
                            if plan.shareable:
                                share = Share(position, level.share, level)
                            register_all(plan, value, outs, position, level, share or level.share)
                        if plan.shareable:
                            self.shared[(plan, id(value))] = (outs, share, value)
                        return outs
        return self.complete(field, ref, value, position, level)

    def reuse(
        self, plan: ObjectPlan, built: Built, position: Position, level: Level, *, listed: bool
    ) -> None:
        """`position` gets a part already built elsewhere: a marker stands for its children."""
        outs, share, value = built
        if share is None:
            return  # no batch fields: the part is complete
        if SHARE_SUBTREES and share.level() is level:
            share.aliases += 1
            marker = Marker(share, position, level.share)
            fields = level.fields
            for field in plan.batch_fields:
                items = fields.get(field)
                if items is not None:
                    items.append(marker)
            return
        # Its children are registered here again. (A part built in another level is not met in
        # practice: a selection is at one depth.)
        if listed:
            register_all(plan, value, outs, position, level, level.share)
        else:
            register(plan, value, outs, position, level, level.share)

    def project(self, plan: ObjectPlan, rows: Rows[Any]) -> list[Any] | None:
        """The projection path (codegen.project): a selection of plain fields built from the
        rows, budgeted and shared as the fast path's lists are; None: build the objects."""
        key = (plan, id(rows))
        built = self.shared.get(key) if plan.shareable else None
        outs = built[0] if built is not None else project(plan, rows)
        if outs is None:
            return None
        self.budget.spend(len(outs))
        if plan.shareable and built is None:
            self.shared[key] = (outs, None, rows)  # no batch fields: nothing to share below
        return outs

    def complete(
        self, field: FieldPlan, ref: TypeRef, value: Any, position: Position, level: Level
    ) -> Any:
        if isinstance(value, Exception):
            raise value
        if ref.non_null:
            completed = self._complete_nullable(field, ref, value, position, level)
            if completed is None:
                raise TypeError(
                    "Cannot return null for non-nullable field "
                    f"{field.parent_type.name}.{field.name}."
                )
            return completed
        return self._complete_nullable(field, ref, value, position, level)

    def _complete_nullable(
        self, field: FieldPlan, ref: TypeRef, value: Any, position: Position, level: Level
    ) -> Any:
        if value is None or value is Undefined:
            return None
        if ref.item is not None:
            return self.complete_list(field, ref.item, value, position, level)
        if ref.leaf is not None:
            return complete_leaf(ref.leaf, value)
        assert ref.object is not None
        if not ref.listed:  # a list item was counted with its list
            self.budget.spend(1)
        return self.complete_object(ref.object, value, position, level)

    def complete_list(
        self, field: FieldPlan, item: TypeRef, value: Any, position: Position, level: Level
    ) -> Any:
        if not is_iterable(value):
            raise GraphQLError(
                "Expected Iterable, but did not find one for field "
                f"'{field.parent_type.name}.{field.name}'."
            )
        items = value if isinstance(value, Sized) else list(value)
        self.budget.spend(len(items))
        completed: list[Any] = []
        for index, element in enumerate(items):
            item_position = (*position, index)
            try:
                completed.append(self.complete(field, item, element, item_position, level))
            except Exception as raw:
                self.field_error(raw, item, field, item_position)
                completed.append(None)
        return completed

    def complete_object(
        self, plan: ObjectPlan, source: Any, position: Position, level: Level
    ) -> Any:
        fast = plan.fast
        if fast is not None and self.args.all_valid(plan.batch_fields):
            key = (plan, id(source))
            built = self.shared.get(key) if plan.shareable else None
            if built is not None:
                self.reuse(plan, built, position, level, listed=False)
                return built[0]
            try:
                out = fast.one(source)
            except Exception:
                pass
            else:
                share = None
                if plan.batch_fields:
                    share = Share(position, level.share, level) if plan.shareable else None
                    register(plan, source, out, position, level, share or level.share)
                if plan.shareable:
                    self.shared[key] = (out, share, source)
                return out
        return self.complete_object_carefully(plan, source, position, level)

    def complete_object_carefully(
        self, plan: ObjectPlan, source: Any, position: Position, level: Level
    ) -> Any:
        """Field by field, in order, exactly as graphql-core's execute_fields does."""
        out: dict[str, Any] = {}
        batched: list[FieldPlan] = []
        for field in plan.fields:
            kind = field.kind
            if kind is Kind.TYPENAME:
                out[field.key] = plan.name
                continue
            field_position = (*position, field.key)
            try:
                if kind is Kind.BATCH:
                    self.args.graphql(field)  # argument errors surface now, as in graphql-core
                    out[field.key] = None
                    batched.append(field)
                    continue
                if kind is Kind.ATTR:
                    value = getattr(source, field.attr)
                else:
                    value = self.call_resolver(field, plan, source, field_position)
                out[field.key] = self.complete(field, field.type, value, field_position, level)
            except Exception as raw:
                self.field_error(raw, field.type, field, field_position)
                out[field.key] = None
        for field in batched:
            level.fields.setdefault(field, []).append((source, out, position, level.share))
        return out

    def call_resolver(
        self, field: FieldPlan, plan: ObjectPlan, source: Any, position: Position
    ) -> Any:
        args = self.args.graphql(field)
        info = self.input.resolve_info(
            field.definition, field.nodes, plan.type, self.graphql_path(position)
        )
        resolve = field.definition.resolve
        assert resolve is not None
        result = resolve(source, info, **args)
        if is_awaitable(result):  # the plan only takes synchronous resolvers
            _close(result)
            raise RuntimeError(f"{plan.name}.{field.name} returned an awaitable")
        return result

    # ---- errors ----

    def field_error(
        self, raw: Exception, ref: TypeRef, field: FieldPlan, position: Position
    ) -> None:
        """graphql-core's handle_field_error: raise for non-null, else record and go on. The
        node budget running out is no field error: it goes on up and ends the operation."""
        if isinstance(raw, NodeLimitExceeded):
            raise raw
        error = located_error(raw, field.nodes, list(position))
        if ref.non_null:
            raise error
        self.collected.add(error, position)

    def propagate(self, error: GraphQLError, position: Position) -> None:
        self.collected.propagate(error, position, self.data, self.plan.root)

    def graphql_path(self, position: Position) -> Path:
        return graphql_path(self.plan.root, position)

    def strawberry_info(self, field: FieldPlan, position: Position) -> Any:
        raw = self.input.resolve_info(
            field.definition, field.nodes, field.parent_type, self.graphql_path(position)
        )
        assert field.strawberry_field is not None
        return self.schema.config.info_class(_raw_info=raw, _field=field.strawberry_field)


def register(
    plan: ObjectPlan,
    source: Any,
    out: dict[str, Any],
    position: Position,
    level: Level,
    share: Share | None,
) -> None:
    """Add the batch fields of `out` (built from `source`) to the level's pending work."""
    entry = (source, out, position, share)
    fields = level.fields
    for field in plan.batch_fields:
        entries = fields.get(field)
        if entries is None:
            fields[field] = [entry]
        else:
            entries.append(entry)


def register_all(
    plan: ObjectPlan,
    sources: list[Any],
    outs: list[Any],
    position: Position,
    level: Level,
    share: Share | None,
) -> None:
    """`register` for each item of a list built from `sources`."""
    entries = [
        (source, out, (*position, index), share)
        for index, (source, out) in enumerate(zip(sources, outs, strict=True))
        if out is not None
    ]
    if not entries:  # an empty list (or all nulls) leaves no pending work: no empty batch
        return
    fields = level.fields
    for field in plan.batch_fields:
        items = fields.get(field)
        if items is None:
            fields[field] = list(entries)
        else:
            items.extend(entries)


def complete_leaf(leaf: GraphQLLeafType, value: Any) -> Any:
    coerced = leaf.coerce_output_value(value)
    if coerced is Undefined or coerced is None:
        raise TypeError(
            f"Expected `{inspect(leaf)}.coerce_output_value({inspect(value)})` to return "
            f"non-nullable value, returned: {inspect(coerced)}"
        )
    return coerced


def _close(awaitable: Any) -> None:
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()
