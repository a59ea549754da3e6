"""Completing values: graphql-core's `complete_value`, shaped for whole lists, and its errors.

The generated builders (codegen.py) turn a list of source objects into its dictionaries in one
go; anything they do not decide (a None in a non-null field, an odd value, an exception) takes
the careful path here, which is graphql-core's algorithm run for that object. Objects built are
shared between the positions they appear at (sharing.py), and their batch fields registered in
the level being built (`Level`) for the runtime (runtime.py) to run.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Any

from graphql import GraphQLError, GraphQLLeafType, located_error
from graphql.pyutils import Path, Undefined, inspect, is_awaitable, is_iterable

from schema.compiled.arguments import Arguments
from schema.compiled.codegen import project
from schema.compiled.model import FieldPlan, Kind, ObjectPlan, OperationPlan, TypeRef
from schema.compiled.positions import Collected, Position, graphql_path
from schema.compiled.request import OperationInput
from schema.compiled.sharing import Level, Marker, Share
from schema.guards import NodeBudget, NodeLimitExceeded
from schema.rows import Rows

# Whether a part built once is also run once (see sharing.py); off, its children are run at every
# position it appears at. Only tests and debugging turn it off: they compare the two.
SHARE_SUBTREES = True
# A response part built by the fast path, the share its children were registered under, and the
# value it was built from (kept alive: it is looked up by its id).
Built = tuple[Any, Share | None, Any]


class Completion:
    """The completing half of a `Run` (runtime.py), which holds the state named here."""

    __slots__ = ()

    args: Arguments
    budget: NodeBudget
    collected: Collected
    data: dict[str, Any]
    input: OperationInput
    plan: OperationPlan
    shared: dict[tuple[ObjectPlan, int], Built]

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
            close(result)
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


def close(awaitable: Any) -> None:
    """Close a coroutine nobody will await (no "never awaited" warning)."""
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()
