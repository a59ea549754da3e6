"""Reading many SQLAlchemy rows fast.

Attribute access on a SQLAlchemy `Row` (`row.written_phrase`) costs about half a microsecond per
column; for the 2,500 orders of a large response that is most of the time spent building objects.
`columns` resolves the positions of the wanted columns once per result and hands out plain tuples,
five times cheaper to unpack.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import Any


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
