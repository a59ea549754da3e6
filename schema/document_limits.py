"""Depth and alias limits as validation rules that cost time linear in the document.

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
