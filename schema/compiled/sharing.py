"""Response parts built once and referenced at every position they appear at.

Many-to-many queries meet the same source object many times under the same selection: in
`{ bakeries { suppliers { bakeries { orders { id } } } } }` on the demo data, ~150 supplier
positions hold ~10 suppliers, and the ~1,900 bakery positions under them ~150 distinct lists. When
nothing below a selection sees its position (`ObjectPlan.shareable`), the JSON built for one
source object is the same wherever it appears, so the runtime builds it once and references the
same dicts from every position (the floor of the benchmark does the same by hand).

Building the dicts once is not enough: the next levels would still load and complete the batch
fields of every position. So only the first position (the canonical one) registers its children
for the next level; every other position of the same object gets a `Marker` that stands for its
whole subtree, level by level:

- at each level, the work done under the canonical position is noted per share (`Ledger`): the
  nodes it spent, the entries and markers it went through, and whether it recorded an error;
- a marker met later in the same level (response order: its subtree comes after the canonical
  one) spends the same nodes again (the response holds the subtree once per position) and is
  passed on to the next level;
- when the canonical subtree recorded an error at that level, or parts of it were skipped because
  they sat in a nulled part of the response, the marker is expanded instead: each entry noted
  under the canonical position is done again at its image under the marker's position, for real.
  That is exactly what the runtime did before sharing (the same dicts completed at each position),
  so errors get every path, null propagation and graphql-core's error order stay as they were, at
  the cost of the work sharing saves, only where errors are.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

from schema.compiled.model import FieldPlan
from schema.compiled.positions import Position


class Share:
    """A part of the response (a list of objects, or one object) built once at `root`."""

    __slots__ = ("aliases", "level", "parent", "root")

    def __init__(self, root: Position, parent: Share | None, level: Level) -> None:
        self.root = root
        self.parent = parent  # the share the canonical position itself sits in
        # The accumulator its entries went to; weakly, as its entries hold this share: a cycle
        # would keep a whole level (sources, dicts) alive until the collector found it.
        self.level = weakref.ref(level)
        self.aliases = 0  # markers made for it

    def watch(self) -> tuple[Share, ...]:
        """This share and those around it that have other positions: the ledgers an entry under
        it must write to. (A share's markers are all made in the level that built it, before its
        entries run.)"""
        found = []
        share: Share | None = self
        while share is not None:
            if share.aliases:
                found.append(share)
            share = share.parent
        return tuple(found)


class Marker:
    """The subtree at `root` is the one at `share.root`; `context` is the share `root` sits in."""

    __slots__ = ("context", "root", "share")

    def __init__(self, share: Share, root: Position, context: Share | None) -> None:
        self.share = share
        self.root = root
        self.context = context

    def image(self, item: Item) -> Item:
        """`item`, noted under the canonical position, at its place under this marker."""
        cut = len(self.share.root)
        if item.__class__ is Marker:
            assert isinstance(item, Marker)
            return Marker(item.share, self.root + item.root[cut:], self.context)
        source, out, position, _ = item  # type: ignore[misc]
        return (source, out, self.root + position[cut:], self.context)


# A parent of the next level: its source object, its response dict, its position, and the share
# that position sits in.
Entry = tuple[Any, dict[str, Any], Position, Share | None]
Item = Entry | Marker


class Level:
    """The batch fields met while building one level, with their parents: the next level's work.

    `share` is the share of the entry being completed (set by the runtime before each entry,
    synchronously, so it is never seen by another level)."""

    __slots__ = ("__weakref__", "fields", "share")

    def __init__(self, share: Share | None = None) -> None:
        self.fields: dict[FieldPlan, list[Item]] = {}
        self.share = share


class Noted:
    __slots__ = ("dirty", "items", "nodes")

    def __init__(self) -> None:
        self.items: list[tuple[Item, Any]] = []  # (entry or marker, its loaded value)
        self.nodes = 0
        self.dirty = False


class Ledger:
    """What one batch did under each watched share (see the module's docstring)."""

    __slots__ = ("noted", "watched")

    def __init__(self) -> None:
        self.noted: dict[Share, Noted] = {}
        # `Share.watch()` of the shares met, once per batch (kept here, not on the shares: a
        # share's own tuple would hold it in a cycle).
        self.watched: dict[Share, tuple[Share, ...]] = {}

    def watch(self, share: Share | None) -> tuple[Share, ...]:
        if share is None:
            return ()
        watched = self.watched.get(share)
        if watched is None:
            watched = self.watched[share] = share.watch()
        return watched

    def note(
        self, watched: tuple[Share, ...], item: Item, value: Any, nodes: int, dirty: bool
    ) -> None:
        noted = self.noted
        for share in watched:
            entry = noted.get(share)
            if entry is None:
                entry = noted[share] = Noted()
            entry.items.append((item, value))
            entry.nodes += nodes
            if dirty:
                entry.dirty = True

    def skip(self, watched: tuple[Share, ...], item: Item, value: Any) -> None:
        """`item` was not run: it sits in a nulled part of the response. Its images under other
        positions, which may be alive, are then run for real."""
        self.note(watched, item, value, 0, True)

    def get(self, share: Share) -> Noted | None:
        return self.noted.get(share)

    def walk(self, items: list[Item], values: list[Any]) -> Iterator[tuple[Item, Any]]:
        """The batch's items in order, a marker whose canonical subtree was dirty at this level
        replaced by the images of what was noted there. Lazy: a marker is looked at only once
        everything before it (its canonical subtree included) has been run."""
        for item, value in zip(items, values, strict=True):
            if item.__class__ is Marker:
                assert isinstance(item, Marker)
                noted = self.noted.get(item.share)
                if noted is not None and noted.dirty:
                    yield from self.walk(
                        [item.image(inner) for inner, _ in noted.items],
                        [inner_value for _, inner_value in noted.items],
                    )
                    continue
            yield item, value
