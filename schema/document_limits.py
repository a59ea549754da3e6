"""Depth, alias and repeated-field limits that cost time linear in the document.

Strawberry's `QueryDepthLimiter` and `MaxAliasesLimiter` walk every fragment spread again for each
place it is spread, so a 600-byte document of fragments spreading fragments ten times a level
takes seconds to validate (six levels: 0.7 s; each further level ten times more), all of it on the
event loop, before any cost limit can look at it. These rules give the same answers and the same
messages, but measure each fragment once: a fragment's depth and alias count do not depend on
where it is spread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)


class _Fragments:
    """Each fragment measured once; a fragment spread inside itself (an error another rule
    reports) counts as nothing, as in Strawberry's limiters."""

    def __init__(
        self,
        definitions: Mapping[str, FragmentDefinitionNode],
        measure: Callable[[SelectionSetNode, _Fragments], int],
    ) -> None:
        self.definitions = definitions
        self.measure = measure
        self.known: dict[str, int] = {}
        self.open: set[str] = set()

    def of(self, name: str) -> int:
        known = self.known.get(name)
        if known is not None:
            return known
        definition = self.definitions.get(name)
        if definition is None or name in self.open:
            return 0
        self.open.add(name)
        value = self.measure(definition.selection_set, self)
        self.open.discard(name)
        self.known[name] = value
        return value


def _depth(selection_set: SelectionSetNode, fragments: _Fragments) -> int:
    """Fields nested below this selection set (a leaf field adds nothing, as in Strawberry)."""
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.selection_set is None or selection.name.value.startswith("__"):
                continue
            deepest = max(deepest, 1 + _depth(selection.selection_set, fragments))
        elif isinstance(selection, InlineFragmentNode):
            deepest = max(deepest, _depth(selection.selection_set, fragments))
        elif isinstance(selection, FragmentSpreadNode):
            deepest = max(deepest, fragments.of(selection.name.value))
    return deepest


def _aliases(selection_set: SelectionSetNode, fragments: _Fragments) -> int:
    """Aliased fields below this selection set, every fragment spread counted where it is spread."""
    count = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.alias is not None:
                count += 1
            if selection.selection_set is not None:
                count += _aliases(selection.selection_set, fragments)
        elif isinstance(selection, InlineFragmentNode):
            count += _aliases(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            count += fragments.of(selection.name.value)
    return count


def _parts(
    context: ValidationContext,
) -> tuple[list[OperationDefinitionNode], dict[str, FragmentDefinitionNode]]:
    definitions = context.document.definitions
    operations = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
    return operations, fragments


def max_depth_rule(max_depth: int) -> type[ValidationRule]:
    class MaxDepth(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            operations, definitions = _parts(context)
            fragments = _Fragments(definitions, _depth)
            for operation in operations:
                if _depth(operation.selection_set, fragments) > max_depth:
                    name = operation.name.value if operation.name else "anonymous"
                    context.report_error(
                        GraphQLError(
                            f"'{name}' exceeds maximum operation depth of {max_depth}",
                            [operation],
                        )
                    )

    return MaxDepth


def max_aliases_rule(max_aliases: int) -> type[ValidationRule]:
    class MaxAliases(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            operations, definitions = _parts(context)
            fragments = _Fragments(definitions, _aliases)
            total = sum(_aliases(operation.selection_set, fragments) for operation in operations)
            if total > max_aliases:
                context.report_error(GraphQLError(f"{total} aliases found. Allowed: {max_aliases}"))

    return MaxAliases


class _OverBudget(Exception):
    pass


def field_overlaps(document: DocumentNode, budget: int) -> int:
    """How many pairs of fields graphql-core's OverlappingFieldsCanBeMerged rule would compare,
    counted up to just past `budget` (then it stops counting).

    The rule compares every pair of fields that share a response name in a selection set
    (fields of inline fragments and of the fragments spread there included), and each such
    pair of fields with selections compares their sub-fields the same way: the work grows with
    the square of the repeats at every level, so 500 `bakery(id: "<i>")` in one selection set
    took 1.4 s, and five repeats a level, eight levels deep, 1.1 s, all on the event loop. The
    count follows the same pairs, one step each, and gives up past the budget, so it costs at
    most `budget` steps itself."""
    definitions = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    flattened: dict[int, dict[str, list[FieldNode]]] = {}
    count = 0

    def fields_of(selection_set: SelectionSetNode) -> dict[str, list[FieldNode]]:
        known = flattened.get(id(selection_set))
        if known is None:
            known = {}
            _collect(selection_set, known, set())
            flattened[id(selection_set)] = known
        return known

    def _collect(
        selection_set: SelectionSetNode, into: dict[str, list[FieldNode]], spread: set[str]
    ) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                into.setdefault((selection.alias or selection.name).value, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                _collect(selection.selection_set, into, spread)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                definition = definitions.get(name)
                if definition is not None and name not in spread:  # once per set; no cycles
                    spread.add(name)
                    _collect(definition.selection_set, into, spread)

    def pair(a: FieldNode, b: FieldNode) -> None:
        nonlocal count
        count += 1
        if count > budget:
            raise _OverBudget
        if a.selection_set is not None and b.selection_set is not None:
            mine, theirs = fields_of(a.selection_set), fields_of(b.selection_set)
            for name, fields in mine.items():
                for other in theirs.get(name, ()):
                    for field in fields:
                        pair(field, other)

    def within(selection_set: SelectionSetNode) -> None:
        for fields in fields_of(selection_set).values():
            for i, field in enumerate(fields):
                for other in fields[i + 1 :]:
                    pair(field, other)

    def every_selection_set(selection_set: SelectionSetNode) -> None:
        within(selection_set)
        for selection in selection_set.selections:
            nested = getattr(selection, "selection_set", None)
            if nested is not None:
                every_selection_set(nested)

    try:
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
                every_selection_set(definition.selection_set)
    except _OverBudget:
        pass
    return count


def field_overlap_refusal(document: DocumentNode, budget: int) -> GraphQLError | None:
    """The refusal of a document whose overlapping fields would take validation more than
    `budget` comparisons (0: no limit)."""
    if budget <= 0 or field_overlaps(document, budget) <= budget:
        return None
    return GraphQLError(
        "The document repeats fields sharing a response name (in one selection set, fragments "
        f"included, and again inside them) so often that checking they can be merged takes "
        f"more than {budget} comparisons: select each field once, or give each its own alias "
        "(a server limit, set by BATCHERY_MAX_FIELD_OVERLAPS).",
        extensions={"code": "GRAPHQL_VALIDATION_FAILED"},
    )


def operations_refusal(document: DocumentNode, limit: int) -> GraphQLError | None:
    """The refusal of a document holding more than `limit` operations (0: no limit). Only one
    of them runs, but each is validated, costed and scoped when the document is prepared: 1,000
    small ones (33 KB) took up to 1.3 s, on the event loop."""
    count = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
    if limit <= 0 or count <= limit:
        return None
    return GraphQLError(
        f"The document holds {count} operations, more than {limit}: send only the operation to "
        "run, or a few (a server limit, set by BATCHERY_MAX_DOCUMENT_OPERATIONS).",
        extensions={"code": "GRAPHQL_VALIDATION_FAILED"},
    )
