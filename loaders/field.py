"""`batch_field`: declare a GraphQL field whose resolver sees every parent of its level at once.

    async def newest_orders(bakeries: list[Bakery], info: Info, limit_to: int = 15)
            -> list[CakeOrder]:
        rows = await info.context.reader.newest_orders([b.pk for b in bakeries], limit_to)
        return from_sources(bakeries).with_results(map(CakeOrder.from_row, rows),
                                                   key=lambda o: o.bakery_pk)

    @strawberry.type
    class Bakery:
        orders: list[CakeOrder] = batch_field(newest_orders)

The schema author never touches a DataLoader: `batch_field` makes the per-parent resolver, and a
`LoaderRegistry` (one per request, on `info.context.loaders`) holds one loader per field and per
distinct set of arguments, so aliases asking `orders(limitTo: 5)` and `orders(limitTo: 50)` are each
batched and each answered right.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import strawberry
from strawberry.types import Info
from strawberry.types.base import StrawberryList, StrawberryOptional

from loaders.builder import BatchResult, KeyFn, default_key, distribute
from loaders.dataloader import InFlight, SafeDataLoader

BatchFn = Callable[..., Coroutine[Any, Any, BatchResult[Any] | Mapping[Any, Any]]]


class LoaderRegistry:
    """The loaders of one request (or one mutation): made on first use, then reused.

    `inflight` is shared by every registry of one request (see `fresh`), so the request can stop
    all the batches it started, whichever loaders they belong to.
    """

    def __init__(
        self,
        max_batch_size: int | None = None,
        inflight: InFlight | None = None,
        family: list[LoaderRegistry] | None = None,
    ) -> None:
        self.max_batch_size = max_batch_size
        self.inflight = inflight if inflight is not None else InFlight()
        self._loaders: dict[Hashable, SafeDataLoader[Any, Any]] = {}
        # Every registry of the request (this one and those `fresh` made), for `close`.
        self._family = family if family is not None else []
        self._family.append(self)

    def fresh(self) -> LoaderRegistry:
        """Empty loaders for the same request (a mutation's own, or after a write)."""
        return LoaderRegistry(self.max_batch_size, self.inflight, self._family)

    def close(self) -> None:
        """Drop the loaders of the whole request (this registry's and its `fresh` ones'), once
        its answer is out. A loader's batch function holds the `info` of its first caller, and
        so the context that holds this registry: a reference cycle, which only the garbage
        collector's slower generations would free, with every row and object the loaders cached
        (~5,000 objects per 2,500-row request), and which every collection until then walks."""
        for registry in self._family:
            for loader in registry._loaders.values():
                loader.clear_all()  # each loader is in a cycle of its own too (its batch task)
            registry._loaders.clear()
        self._family.clear()

    def get(
        self, key: Hashable, make: Callable[[], SafeDataLoader[Any, Any]]
    ) -> SafeDataLoader[Any, Any]:
        loader = self._loaders.get(key)
        if loader is None:
            loader = self._loaders[key] = make()
        return loader

    @property
    def count(self) -> int:
        # A property, not __len__: an empty registry must never be falsy (`loaders or new()`).
        return len(self._loaders)


@dataclass(frozen=True, slots=True)
class BatchSpec:
    fn: BatchFn
    key: KeyFn
    many: bool | None
    wants_info: bool
    field_name: str

    def is_many(self, info: Info) -> bool:
        """A list field gets `[]` for a parent with no children; a single field gets null."""
        if self.many is not None:
            return self.many
        return _returns_list(info)


def batch_field(
    fn: BatchFn,
    *,
    key: KeyFn = default_key,
    many: bool | None = None,
    name: str | None = None,
    description: str | None = None,
    deprecation_reason: str | None = None,
    directives: Sequence[object] = (),
) -> Any:
    """A Strawberry field resolved by `fn(parents, [info], **arguments)` for a whole level.

    `key` identifies a parent (default: its `pk`). Whether the field holds one child or a list is
    read from the field's declared type unless `many` says so. `directives` are schema directives
    of the field (the schema's cost directives, say).
    """
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())
    if not params:
        raise TypeError(f"batch function {fn.__qualname__} must take the list of parents first")
    arguments = [p for p in params[1:] if p.name != "info"]
    spec = BatchSpec(
        fn=fn,
        key=key,
        many=many,
        wants_info=any(p.name == "info" for p in params[1:]),
        field_name=name or fn.__name__,
    )
    _many: list[bool] = []

    async def resolve(self: Any, info: Info, **kwargs: Any) -> Any:
        if not _many:  # the field's type is only known once every type is defined
            _many.append(spec.is_many(info))
        loader = info.context.loaders.get(
            (spec, _freeze(kwargs)), lambda: _make_loader(spec, _many[0], info, kwargs)
        )
        return await loader.load(self)

    # The compiled executor finds the spec here and resolves a whole level in one call.
    resolve.__batchery_spec__ = spec  # type: ignore[attr-defined]
    resolve.__name__ = fn.__name__
    resolve.__qualname__ = fn.__qualname__
    resolve.__module__ = fn.__module__
    resolve.__doc__ = fn.__doc__
    resolve.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[
            inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            inspect.Parameter("info", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Info),
            *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in arguments),
        ],
        return_annotation=inspect.Signature.empty,
    )
    # No return annotation: the field's type is the one declared on the class attribute.
    resolve.__annotations__ = {"info": Info, **{p.name: p.annotation for p in arguments}}
    return strawberry.field(
        resolver=resolve,
        name=name,
        description=description,
        deprecation_reason=deprecation_reason,
        directives=directives,
    )


def batch_spec_of(resolver: object) -> BatchSpec | None:
    """The spec behind a `batch_field` resolver, or None for any other function."""
    return getattr(resolver, "__batchery_spec__", None)


def level_loader(
    spec: BatchSpec, many: bool, info: Info, kwargs: dict[str, Any]
) -> SafeDataLoader[Any, Any]:
    """The request's loader of `spec` for these arguments: the same one the per-parent resolver
    uses, so the compiled executor and graphql-core batch together."""
    registry: LoaderRegistry = info.context.loaders
    return registry.get((spec, _freeze(kwargs)), lambda: _make_loader(spec, many, info, kwargs))


def _make_loader(
    spec: BatchSpec, many: bool, info: Info, kwargs: dict[str, Any]
) -> SafeDataLoader[Any, Any]:
    # Plain functions, not coroutines: the loader awaits the batch function's own coroutine.
    if spec.wants_info:

        def load(parents: list[Any]) -> Coroutine[Any, Any, Any]:
            return spec.fn(parents, info, **kwargs)
    else:

        def load(parents: list[Any]) -> Coroutine[Any, Any, Any]:
            return spec.fn(parents, **kwargs)

    def finish(parents: list[Any], outcome: Any) -> list[Any]:
        return distribute(outcome, parents, spec.key, many=many, field_name=spec.field_name)

    registry: LoaderRegistry = info.context.loaders
    return SafeDataLoader(
        load,
        max_batch_size=registry.max_batch_size,
        cache_key=spec.key,
        inflight=registry.inflight,
        finish=finish,
    )


def _freeze(value: Any) -> Hashable:
    """A hashable stand-in for field arguments (lists, input objects and all)."""
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(_freeze(v) for v in value)
    if hasattr(value, "__dataclass_fields__"):
        return (type(value), _freeze(vars(value)))
    return value  # type: ignore[no-any-return]


def _returns_list(info: Info) -> bool:
    field_type = info.return_type
    if isinstance(field_type, StrawberryOptional):
        field_type = field_type.of_type
    return isinstance(field_type, StrawberryList)
