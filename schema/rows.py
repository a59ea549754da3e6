"""Reading many SQLAlchemy rows fast.

Attribute access on a SQLAlchemy `Row` (`row.written_phrase`) costs about half a microsecond per
column; for the 2,500 orders of a large response that is most of the time spent building objects.
`columns` resolves the positions of the wanted columns once per result and hands out plain tuples,
five times cheaper to unpack; `constructor` builds the objects without keyword arguments.
"""

from __future__ import annotations

import dataclasses
import keyword
from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any, TypeVar

T = TypeVar("T")


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
