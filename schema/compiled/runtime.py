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

from collections.abc import Awaitable, Coroutine, Sized
from typing import Any

import strawberry
from graphql import ExecutionResult, GraphQLError, GraphQLLeafType, located_error
from graphql.pyutils import Path, Undefined, gather_with_cancel, inspect, is_awaitable, is_iterable

from loaders.dataloader import SafeDataLoader
from loaders.field import level_loader
from schema.compiled.arguments import Arguments
from schema.compiled.model import FieldPlan, Kind, ObjectPlan, OperationPlan, TypeRef
from schema.compiled.positions import Collected, Position, graphql_path
from schema.compiled.request import OperationInput
from schema.guards import NodeBudget, NodeLimitExceeded

Entry = tuple[Any, dict[str, Any], Position]  # source object, its response dict, its position
Pending = dict[FieldPlan, list[Entry]]
# Fields answered together, their parents, and the loader (or why there is none).
Batch = tuple[list[FieldPlan], list[Entry], "SafeDataLoader[Any, Any] | Exception"]


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
        # selection gives the same JSON, so it is built once and referenced (see `shareable`).
        self.shared: dict[tuple[ObjectPlan, int], Any] = {}

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
                elif outcome:
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
            pending: Pending = {}
            self.data[field.key] = self.complete_value(field, result, position, pending)
            return pending
        except Exception as raw:
            self.field_error(raw, field.type, field, position)  # raises when non-null
            self.data[field.key] = None
            return None

    async def _finish_root_field(self, field: FieldPlan, awaitable: Awaitable[Any]) -> None:
        position: Position = (field.key,)
        pending: Pending = {}
        try:
            value = await awaitable
            completed = self.complete_value(field, value, position, pending)
        except Exception as raw:
            try:
                self.field_error(raw, field.type, field, position)
            except GraphQLError as error:
                self.collected.add(error, ())
            return
        if not self.collected.root_nulled:
            self.data[field.key] = completed
            await self.run_pending(pending)

    # ---- levels ----

    async def run_pending(self, pending: Pending) -> None:
        if not pending or self.collected.root_nulled:
            return
        batches = self.batches(pending)
        if len(batches) == 1:
            await self.run_batch(*batches[0])
            return
        # The first failure (only the node budget's can get here) cancels the sibling batches.
        await gather_with_cancel(*(self.run_batch(*batch) for batch in batches))

    def batches(self, pending: Pending) -> list[Batch]:
        """One batch per loader: sibling fields of the same parents that share a loader (aliases
        of one field, say) are one batch, answered parent by parent as graphql-core's waiters
        are woken, so their errors come in the same order."""
        batches: list[Batch] = []
        for field, entries in pending.items():
            assert field.spec is not None
            info = self.strawberry_info(field, (*entries[0][2], field.key))
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
        entries: list[Entry],
        loader: SafeDataLoader[Any, Any] | Exception,
    ) -> None:
        """Resolve `fields` for every parent of a level with one call of their batch function."""
        if self.collected.root_nulled:
            return
        values: list[Any]
        if isinstance(loader, Exception):
            values = [loader] * len(entries)
        else:
            try:
                values = await loader.load_level([entry[0] for entry in entries])
            except Exception as error:
                values = [error] * len(entries)
        pending: Pending = {}
        budget = self.budget
        for (_, out, position), value in zip(entries, values, strict=True):
            while budget.used >= budget.next_check and budget.should_yield():
                await budget.pause()
                if self.collected.root_nulled:
                    return
            for field in fields:
                if self.collected.nulled and self.collected.is_nulled(position):
                    break
                field_position = (*position, field.key)
                try:
                    out[field.key] = self.complete_value(field, value, field_position, pending)
                except Exception as raw:
                    try:
                        self.field_error(raw, field.type, field, field_position)
                        out[field.key] = None
                    except GraphQLError as error:
                        self.propagate(error, position)
        await self.run_pending(pending)

    # ---- completing values (graphql-core's complete_value, shaped for whole lists) ----

    def complete_value(
        self, field: FieldPlan, value: Any, position: Position, pending: Pending
    ) -> Any:
        """A field's completed value; raises like graphql-core when it cannot be completed. The
        batch fields of the objects built are added to `pending`."""
        ref = field.type
        item = ref.item
        if item is not None and item.object is not None and value.__class__ is list:
            plan = item.object
            fast = plan.fast
            if fast is not None and self.args.all_valid(plan.batch_fields):
                shared = self.shared.get((plan, id(value))) if plan.shareable else None
                try:
                    outs = shared or (fast.many if item.non_null else fast.many_nullable)(value)
                except Exception:
                    pass  # the careful path below decides
                else:
                    self.budget.spend(len(outs))
                    if plan.shareable:
                        self.shared[(plan, id(value))] = outs
                    if plan.batch_fields:
                        for index, (source, out) in enumerate(zip(value, outs, strict=True)):
                            if out is not None:
                                register(plan, source, out, (*position, index), pending)
                    return outs
        return self.complete(field, ref, value, position, pending)

    def complete(
        self, field: FieldPlan, ref: TypeRef, value: Any, position: Position, pending: Pending
    ) -> Any:
        if isinstance(value, Exception):
            raise value
        if ref.non_null:
            completed = self._complete_nullable(field, ref, value, position, pending)
            if completed is None:
                raise TypeError(
                    "Cannot return null for non-nullable field "
                    f"{field.parent_type.name}.{field.name}."
                )
            return completed
        return self._complete_nullable(field, ref, value, position, pending)

    def _complete_nullable(
        self, field: FieldPlan, ref: TypeRef, value: Any, position: Position, pending: Pending
    ) -> Any:
        if value is None or value is Undefined:
            return None
        if ref.item is not None:
            return self.complete_list(field, ref.item, value, position, pending)
        if ref.leaf is not None:
            return complete_leaf(ref.leaf, value)
        assert ref.object is not None
        if not ref.listed:  # a list item was counted with its list
            self.budget.spend(1)
        return self.complete_object(ref.object, value, position, pending)

    def complete_list(
        self, field: FieldPlan, item: TypeRef, value: Any, position: Position, pending: Pending
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
                completed.append(self.complete(field, item, element, item_position, pending))
            except Exception as raw:
                self.field_error(raw, item, field, item_position)
                completed.append(None)
        return completed

    def complete_object(
        self, plan: ObjectPlan, source: Any, position: Position, pending: Pending
    ) -> Any:
        fast = plan.fast
        if fast is not None and self.args.all_valid(plan.batch_fields):
            shared = self.shared.get((plan, id(source))) if plan.shareable else None
            try:
                out = shared or fast.one(source)
            except Exception:
                pass
            else:
                if plan.shareable:
                    self.shared[(plan, id(source))] = out
                if plan.batch_fields:
                    register(plan, source, out, position, pending)
                return out
        return self.complete_object_carefully(plan, source, position, pending)

    def complete_object_carefully(
        self, plan: ObjectPlan, source: Any, position: Position, pending: Pending
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
                out[field.key] = self.complete(field, field.type, value, field_position, pending)
            except Exception as raw:
                self.field_error(raw, field.type, field, field_position)
                out[field.key] = None
        for field in batched:
            pending.setdefault(field, []).append((source, out, position))
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
    plan: ObjectPlan, source: Any, out: dict[str, Any], position: Position, pending: Pending
) -> None:
    """Add the batch fields of `out` (built from `source`) to the level's pending work."""
    entry = (source, out, position)
    for field in plan.batch_fields:
        entries = pending.get(field)
        if entries is None:
            pending[field] = [entry]
        else:
            entries.append(entry)


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
