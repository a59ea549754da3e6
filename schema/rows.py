"""Reading many SQLAlchemy rows fast, and objects built from rows only when someone needs them.

Attribute access on a SQLAlchemy `Row` (`row.written_phrase`) costs about half a microsecond per
column; for the 2,500 orders of a large response that is most of the time spent building objects.
`columns` resolves the positions of the wanted columns once per result and hands out plain tuples,
five times cheaper to unpack; `constructor` builds the objects without keyword arguments.

`RowType` declares how a schema type's fields come from columns (`id=("id", str)`: the column
`id` through `str`; `name="name"`: the column as is). Its `rows()` gives a `Rows` sequence: the
objects are built the first time anyone reads an item (a resolver, graphql-core, a batch field
of the children), while the compiled executor's projection path reads the rows themselves and
goes straight to the response's dictionaries (`schema/compiled/codegen.py`, `build_rows`), and a
batch function's grouping under parents reads the key column (`partition`, which
`loaders.builder` uses when `with_results(key=...)` names an attribute).
"""

from __future__ import annotations

import dataclasses
import keyword
from collections.abc import Callable, Hashable, Iterator, Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")

Convert = Callable[[Any], Any]


def columns(rows: Sequence[Any], *names: str) -> Iterator[tuple[Any, ...]]:
    """The named columns of every row, in that order, as tuples."""
    if not rows:
        return iter(())
    fields: Sequence[str] = rows[0]._fields
    positions = [fields.index(name) for name in names]
    if len(positions) == 1:
        (position,) = positions
        return ((row[position],) for row in rows)
    return map(itemgetter(*positions), rows)


def field_names(row: Any) -> tuple[str, ...]:
    """The column names of a row: a SQLAlchemy `Row`'s `_fields`, or a record's `keys()`."""
    names = getattr(row, "_fields", None)
    return tuple(names) if names is not None else tuple(row.keys())


def constructor(cls: type[T], *names: str) -> Callable[..., T]:
    """A positional constructor of dataclass `cls` taking exactly its init fields, in `names`
    order: what `cls(**fields)` does, at half the cost (no keyword packing). Checked here: every
    init field given, and no `__post_init__` to skip."""
    fields = {f.name for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    if fields != set(names) or hasattr(cls, "__post_init__"):
        raise TypeError(f"constructor({cls.__name__}) needs exactly {sorted(fields)}")
    if not all(name.isidentifier() and not keyword.iskeyword(name) for name in names):
        raise TypeError(f"constructor({cls.__name__}): field names must be identifiers")
    arguments = ", ".join(names)
    body = "".join(f"\n    o.{name} = {name}" for name in names)
    source = f"def make({arguments}):\n    o = new(cls){body}\n    return o\n"
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    exec(compile(source, f"<constructor of {cls.__name__}>", "exec"), namespace)
    make: Callable[..., T] = namespace["make"]
    return make


class RowType(Generic[T]):
    """How the objects of dataclass `cls` come from rows: every init field from one column, as
    is (`name="name"`) or through a function (`id=("id", str)`). The function must be pure and
    cheap: the projection path calls it where the object would have been built."""

    __slots__ = ("_build", "_getters", "cls", "columns", "fields")

    def __init__(self, cls: type[T], **fields: str | tuple[str, Convert]) -> None:
        self.cls = cls
        self.fields: dict[str, tuple[str, Convert | None]] = {
            name: (spec, None) if isinstance(spec, str) else spec for name, spec in fields.items()
        }
        # The distinct columns the objects read, in a fixed order (the build function's input).
        self.columns = tuple(dict.fromkeys(column for column, _ in self.fields.values()))
        make = constructor(cls, *self.fields)
        namespace: dict[str, Any] = {"make": make}
        arguments = []
        for index, (column, convert) in enumerate(self.fields.values()):
            value = f"c{self.columns.index(column)}"
            if convert is not None:
                namespace[f"_f{index}"] = convert
                value = f"_f{index}({value})"
            arguments.append(value)
        target = ", ".join(f"c{i}" for i in range(len(self.columns)))
        if len(self.columns) == 1:
            target += ","  # itemgetter of one position: wrapped in a tuple by `_getter`
        call = f"make({', '.join(arguments)})"
        source = f"def build(tuples):\n    return [{call} for {target} in tuples]\n"
        exec(compile(source, f"<rows of {cls.__name__}>", "exec"), namespace)
        self._build: Callable[[Iterator[tuple[Any, ...]]], list[T]] = namespace["build"]
        self._getters: dict[tuple[str, ...], Callable[[Any], Any]] = {}

    def __repr__(self) -> str:
        return f"RowType({self.cls.__name__})"

    def rows(self, rows: Sequence[Any]) -> Rows[T]:
        """The objects of `rows`, built when first read. The columns are checked here, so a
        missing one fails the caller (a batch function) as building the objects would."""
        names = field_names(rows[0]) if rows else ()
        if rows:
            self.getter(names)
        return Rows(self, rows, names)

    def one(self, row: Any) -> T:
        """One object from anything with the columns as attributes (a row, a bulk record)."""
        return self._build(iter([tuple(getattr(row, column) for column in self.columns)]))[0]

    def getter(self, names: tuple[str, ...]) -> Callable[[Any], Any]:
        """A function from a row with columns `names` to the tuple of `self.columns`."""
        get = self._getters.get(names)
        if get is None:
            positions = [names.index(column) for column in self.columns]
            if len(positions) == 1:
                (position,) = positions
                get = lambda row: (row[position],)  # noqa: E731
            else:
                get = itemgetter(*positions)
            self._getters[names] = get
        return get

    def build(self, rows: Sequence[Any], names: tuple[str, ...]) -> list[T]:
        if not rows:
            return []
        return self._build(map(self.getter(names), rows))


class Rows(Sequence[T]):
    """Objects of a `RowType`, built from their rows the first time an item is read.

    Reading items (iterating, indexing, `objects()`) builds every object once; the same objects
    are returned to every later reader, so whoever shares this sequence (a loader's cache serves
    every selection and every operation of a request) sees one set of objects. `rows`, `names`
    and `type` are for the readers that need no objects."""

    __slots__ = ("_objects", "names", "rows", "type")

    def __init__(self, row_type: RowType[T], rows: Sequence[Any], names: tuple[str, ...]) -> None:
        self.type = row_type
        self.rows = rows
        self.names = names
        self._objects: list[T] | None = None

    def objects(self) -> list[T]:
        objects = self._objects
        if objects is None:
            objects = self._objects = self.type.build(self.rows, self.names)
        return objects

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        return self.objects()[index]

    def __iter__(self) -> Iterator[T]:
        return iter(self.objects())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Rows):
            return self.objects() == other.objects()
        return isinstance(other, list) and self.objects() == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Rows({self.type.cls.__name__}, {len(self.rows)} rows)"

    def partition(self, attribute: str) -> dict[Hashable, Rows[T]] | None:
        """The rows grouped by the value of `attribute`, each group in the order of the rows;
        None when the attribute is not a column as is, or when the objects are built already
        (then group those: the groups' objects must be the ones every reader has seen)."""
        column, convert = self.type.fields.get(attribute, ("", None))
        if not column or convert is not None or self._objects is not None:
            return None
        if not self.rows:
            return {}
        groups: dict[Hashable, list[Any]] = {}
        # Runs of one key, in C: a batch's rows usually come parent by parent, in any order.
        for key, run in groupby(self.rows, itemgetter(self.names.index(column))):
            group = groups.get(key)
            if group is None:
                groups[key] = list(run)
            else:
                group.extend(run)
        row_type, names = self.type, self.names
        return {key: Rows(row_type, group, names) for key, group in groups.items()}
