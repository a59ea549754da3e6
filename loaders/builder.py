"""The batch builder: how a batch function says which children belong to which parent.

    from_sources(bakeries, key=lambda b: b.pk).with_results(orders, key=lambda o: o.bakery_pk)

is Python for the seed's `StartBatch().FromSource(...).WithResults(...).Complete()`. A batch
function may instead return a plain mapping `{parent or parent key: value}`. Either way,
`distribute` applies the rules of `shared/contract/batch-resolvers.md`: each parent gets its share.

`key` may also name the attribute that holds the parent's key (`key="bakery_pk"`). Then results
that can group themselves without building their objects (`Partitionable`: the schema's
row-backed sequences) are grouped so, each parent's share a sequence of the same kind; anything
else is grouped by reading that attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

P = TypeVar("P")
C = TypeVar("C")

KeyFn = Callable[[Any], Hashable]


def default_key(parent: Any) -> Hashable:
    """Parents are matched by their primary key (`pk`), falling back to `id`."""
    pk: Hashable = getattr(parent, "pk", None)
    if pk is not None:
        return pk
    fallback: Hashable = parent.id  # a parent with neither must fail loudly here
    return fallback


@runtime_checkable
class Partitionable(Protocol):
    """Results that group themselves by an attribute of their items without building them."""

    def partition(self, attribute: str) -> Mapping[Hashable, Sequence[Any]] | None:
        """Each key's items, in order; None when they cannot (then the items are read)."""


class TooManyResults(Exception):
    """A single-valued field matched two or more children for one parent."""


@dataclass(frozen=True, slots=True)
class BatchResult(Generic[C]):
    """Children grouped under the keys of the parents they belong to."""

    included: frozenset[Hashable]
    groups: Mapping[Hashable, Sequence[C]]


@dataclass(frozen=True, slots=True)
class SourceBatch(Generic[P]):
    sources: Sequence[P]
    key: KeyFn

    def with_results(
        self,
        results: Iterable[C],
        key: KeyFn | str | None = None,
        *,
        keys: Callable[[C], Iterable[Hashable]] | None = None,
    ) -> BatchResult[C]:
        """Attach children: `key` names the one parent of each (1->1, 1->N), as a function of
        the child or the name of its attribute; `keys` names every parent of a child shared
        between several (N->N), which is then resolved once."""
        if (key is None) == (keys is None):
            raise TypeError("with_results() takes exactly one of key= or keys=")
        if isinstance(key, str):
            # Not isinstance(results, Partitionable): a runtime protocol check is ~10 us in
            # Python 3.11 (it lists the protocol's attributes each time).
            partition = getattr(results, "partition", None)
            if partition is not None:
                partitioned = partition(key)
                if partitioned is not None:
                    return self._complete(partitioned)
            key = attrgetter(key)
        parent_keys = keys if keys is not None else (lambda child: (key(child),))  # type: ignore[misc]
        groups: dict[Hashable, list[C]] = {}
        for child in results:
            for parent_key in parent_keys(child):
                groups.setdefault(parent_key, []).append(child)
        return self._complete(groups)

    def with_pairs(self, pairs: Iterable[tuple[Hashable, C]]) -> BatchResult[C]:
        """Attach children as `(parent key, child)` pairs, each parent's in the order given: the
        natural shape of a join through a link table (N->N)."""
        groups: dict[Hashable, list[C]] = {}
        for parent_key, child in pairs:
            groups.setdefault(parent_key, []).append(child)
        return self._complete(groups)

    def _complete(self, groups: Mapping[Hashable, Sequence[C]]) -> BatchResult[C]:
        return BatchResult(frozenset(self.key(source) for source in self.sources), groups)


def from_sources(sources: Sequence[P], key: KeyFn = default_key) -> SourceBatch[P]:
    """Start a batch from the parents it answers for; parents left out will resolve to null."""
    return SourceBatch(sources, key)


_MISSING: Any = object()


def distribute(
    outcome: BatchResult[Any] | Mapping[Any, Any],
    parents: Sequence[Any],
    key: KeyFn,
    *,
    many: bool,
    field_name: str,
) -> list[Any]:
    """One value per parent, in the order of `parents`: a value, None (excluded) or an error."""
    if isinstance(outcome, BatchResult):
        return [_from_groups(outcome, key(parent), many, field_name) for parent in parents]
    if isinstance(outcome, Mapping):
        return [_from_mapping(outcome, parent, key(parent)) for parent in parents]
    raise TypeError(
        f"batch function of {field_name!r} must return from_sources(...).with_results(...) "
        f"or a mapping, not {type(outcome).__name__}"
    )


def _from_groups(outcome: BatchResult[Any], parent_key: Hashable, many: bool, field: str) -> Any:
    if parent_key not in outcome.included:
        return None
    children = outcome.groups.get(parent_key, [])
    if many:
        # A list is copied for each parent; any other sequence (a row-backed one) is immutable
        # and handed out as is, so it can stay unbuilt.
        return list(children) if children.__class__ is list else children
    if len(children) > 1:
        return TooManyResults(
            f"{field} expects at most one result per parent, "
            f"but {len(children)} were found for parent {parent_key!r}"
        )
    return children[0] if children else None


def _from_mapping(outcome: Mapping[Any, Any], parent: Any, parent_key: Hashable) -> Any:
    value = outcome.get(parent_key, _MISSING)
    if value is _MISSING:
        try:
            value = outcome.get(parent, None)
        except TypeError:  # unhashable parent objects can only be matched by key
            value = None
    return value
