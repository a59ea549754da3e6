"""The static analysis: one walk over an operation with its variables, cached by the variables it
read (the cost model is described in `schema/cost/__init__.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    value_from_ast_untyped,
)

from app.settings import Settings
from schema.cost.estimate import Estimate, ShapeField
from schema.cost.model import CostModel, FieldCost
from schema.cost.values import MISSING, UNKNOWN, Values

# Distinct variable values remembered per operation; past it, the cache starts again.
ENTRIES_PER_OPERATION = 64
Shape = tuple[ShapeField, ...]


@dataclass(slots=True)
class _OperationCosts:
    reads: frozenset[str] = frozenset()  # the variables any estimate of it has read
    entries: dict[tuple[Any, ...], Estimate] = field(default_factory=dict)
    constant: Estimate | None = None  # set when it reads no variable


class CostCache:
    """The estimates of one document's operations (kept on the cached `PreparedDocument`)."""

    __slots__ = ("_operations",)

    def __init__(self) -> None:
        self._operations: dict[str | None, _OperationCosts] = {}


class CostAnalysis:
    def __init__(self, model: CostModel, settings: Settings) -> None:
        self.model = model
        self.max_page_size = settings.max_page_size
        self.max_records = settings.max_records_per_batch

    def estimate(
        self,
        document: DocumentNode,
        cache: CostCache,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
    ) -> Estimate | None:
        """The operation's estimate, or None when the document has no such operation."""
        costs = cache._operations.get(operation_name)
        if costs is not None and costs.constant is not None:
            return costs.constant  # depends on no variable: the common case, one look-up
        variables = variables or {}
        if costs is not None:
            found = costs.entries.get(_key(costs.reads, variables))
            if found is not None:
                return found
        operation = _operation(document, operation_name)
        if operation is None:
            return None
        walk = _Walk(self, document, operation, variables)
        estimate = walk.run()
        if costs is None:
            costs = cache._operations[operation_name] = _OperationCosts()
        costs.reads = costs.reads | walk.values.reads
        if not costs.reads:
            costs.constant = estimate
        if len(costs.entries) >= ENTRIES_PER_OPERATION:
            costs.entries.clear()
        costs.entries[_key(costs.reads, variables)] = estimate
        return estimate

    def floor(self, document: DocumentNode) -> tuple[int, bool] | None:
        """The least any operation of a parsed (not yet validated) document can cost, whatever its
        variables, and whether variables lowered it. Above the limit, the document is refused
        before validation, which for a few hundred aliases takes longer than the refusal may."""
        floors = [
            _Walk(self, document, operation, {}, unknown=True)
            for operation in document.definitions
            if isinstance(operation, OperationDefinitionNode)
        ]
        if not floors:
            return None
        costs = [(walk.run().requested, bool(walk.values.reads)) for walk in floors]
        return min(costs)


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == name), None)


def _key(reads: frozenset[str], variables: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(_freeze(variables.get(name, MISSING)) for name in sorted(reads))


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return id(value)  # an upload, say: never equal to another request's
    return value


class _Walk:
    """One pass over an operation with its variables: the cost, the shape, the variables read."""

    def __init__(
        self,
        analysis: CostAnalysis,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any],
        *,
        unknown: bool = False,
    ) -> None:
        self.analysis = analysis
        self.fields = analysis.model.fields
        self.operation = operation
        self.values = Values(
            variables,
            {
                d.variable.name.value: value_from_ast_untyped(d.default_value)
                for d in operation.variable_definitions or ()
                if d.default_value is not None
            },
            unknown=unknown,
        )
        # The same fragment spread under many aliases is costed once per (type, fields collected,
        # sizes handed down): a walk is linear in the document, never in the paths through it.
        self.memo: dict[tuple[Any, ...], tuple[int, Shape]] = {}
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }

    def run(self) -> Estimate:
        root = self.analysis.model.schema.get_root_type(self.operation.operation)
        if root is None:
            return Estimate(0, ())
        cost, shape = self.selection(root.name, [self.operation.selection_set], {})
        return Estimate(cost, shape)

    def selection(
        self, type_name: str, sets: list[SelectionSetNode], sized: Mapping[str, int]
    ) -> tuple[int, Shape]:
        fields = self.collect(type_name, sets)
        key = (
            type_name,
            tuple((name, tuple(map(id, nodes))) for name, nodes in fields.items()),
            tuple(sorted(sized.items())),
        )
        found = self.memo.get(key)
        if found is None:
            # A fragment cycle (only in a document not validated yet) costs nothing more.
            self.memo[key] = (0, ())
            found = self.memo[key] = self._selection(type_name, fields, sized)
        return found

    def _selection(
        self, type_name: str, fields: dict[str, list[FieldNode]], sized: Mapping[str, int]
    ) -> tuple[int, Shape]:
        total = 0
        shape: list[ShapeField] = []
        for key, nodes in fields.items():
            name = nodes[0].name.value
            cost = self.fields.get((type_name, name))
            if cost is None:  # introspection (`__typename`, `__schema`): bounded, free
                continue
            size = self.size(cost, nodes[0]) if cost.is_list or cost.slicing else 1
            n = sized.get(name, size) if cost.is_list else 1
            weight = cost.weight * (size if cost.counts_records else 1)
            children: tuple[ShapeField, ...] | None = None
            inner = 0
            if cost.child_type is not None:
                child_sets = [node.selection_set for node in nodes if node.selection_set]
                handed_down = {sized_field: size for sized_field in cost.sized_fields}
                inner, children = self.selection(cost.child_type, child_sets, handed_down)
            total += weight + n * (cost.type_weight + inner)
            records = (cost.weight, nodes[0], cost.slicing) if cost.counts_records else None
            if weight or children is not None:
                flat = children is not None and all(
                    not child.children and child.records is None for child in children
                )
                shape.append(
                    ShapeField(key, weight, cost.type_weight, cost.is_list, children, records, flat)
                )
        return total, tuple(shape)

    def collect(self, type_name: str, sets: list[SelectionSetNode]) -> dict[str, list[FieldNode]]:
        """Fields by response key, merged across fragments as execution merges them."""
        found: dict[str, list[FieldNode]] = {}
        seen: set[str] = set()

        def visit(selection_set: SelectionSetNode) -> None:
            for selection in selection_set.selections:
                if not self.included(selection):
                    continue
                if isinstance(selection, FieldNode):
                    key = selection.alias.value if selection.alias else selection.name.value
                    found.setdefault(key, []).append(selection)
                elif isinstance(selection, InlineFragmentNode):
                    visit(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if fragment is not None and name not in seen:
                        seen.add(name)
                        visit(fragment.selection_set)

        for selection_set in sets:
            visit(selection_set)
        return found

    def included(self, selection: Any) -> bool:
        for directive in selection.directives or ():
            name = directive.name.value
            if name not in ("skip", "include"):
                continue
            condition = next((a.value for a in directive.arguments if a.name.value == "if"), None)
            value = self.values.literal(condition) if condition is not None else MISSING
            if value is UNKNOWN:
                return False  # the least it can cost: as if skipped
            if not isinstance(value, bool):
                continue  # unknown: counted, the conservative side
            if value is (name == "skip"):
                return False
        return True

    def size(self, cost: FieldCost, node: FieldNode) -> int:
        """How many items the field returns (or records it writes)."""
        # Records in a variable count as the largest batch: the cache key stays small, and a write
        # is charged up front what it may do.
        given = [self.values.argument(node, path, not cost.counts_records) for path in cost.slicing]
        if any(value is UNKNOWN for value in given):
            return 0  # the least it can be
        values = [v for v in given if v is not MISSING] or [
            d for d in cost.defaults if d is not None
        ]
        sizes = [self.bounded(v, cost.counts_records) for v in values]
        if sizes and all(s is not None for s in sizes):
            return max(s for s in sizes if s is not None)
        if cost.counts_records:
            return self.analysis.max_records
        if cost.assumed_size is not None and not values:
            return cost.assumed_size
        return self.analysis.max_page_size

    def bounded(self, value: Any, records: bool) -> int | None:
        """A slicing value as a size: capped as the server caps it; None when unbounded."""
        if records:
            return min(len(value), self.analysis.max_records) if isinstance(value, list) else None
        if isinstance(value, bool) or not isinstance(value, int):
            return None  # null (no bound) or a value execution will refuse: a full page
        return max(0, min(value, self.analysis.max_page_size))
