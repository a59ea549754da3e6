"""Counters and histograms counted in plain Python, handed to prometheus_client when collected.

Every `/graphql` request touched five Prometheus values (the response's status counter and
duration histogram, the operation counter, the batch-size and cost histograms): ~5 us per
request, a lock taken per value (a histogram: its sum and a bucket), argument checks, a linear
scan for the bucket. A tally counts the same events in plain attributes and adds them to its
prometheus_client child when the registry is collected (a scrape, or anything else calling
`collect`), so what is exposed is the same, to the bit: counts are whole numbers (exact in a
float), and a histogram's sum is kept here as the same running total, added in the same order,
and set on the child rather than added to it.

They are only updated from the event loop's thread (the front door and the GraphQL endpoint),
as the collection is (`/metrics`, a synchronous `generate_latest`): no lock is needed. The
prometheus_client internals a tally reaches (`_upper_bounds`, `_buckets`, `_sum`) are pinned
with it in constraints.txt.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector, CollectorRegistry


class CounterTally:
    """One child of a Counter, incremented by one at a time."""

    __slots__ = ("child", "count")

    def __init__(self, child: Counter) -> None:
        self.child = child
        self.count = 0

    def inc(self) -> None:
        self.count += 1

    def flush(self) -> None:
        if self.count:
            count, self.count = self.count, 0
            self.child.inc(count)


class HistogramTally:
    """One child of a Histogram (or the histogram itself, unlabelled)."""

    __slots__ = ("bounds", "child", "counts", "total")

    def __init__(self, child: Histogram) -> None:
        self.child = child
        # The same bounds, +Inf last; `bisect_left` finds the first bound >= the value, the
        # bucket prometheus_client's `observe` picks with `amount <= bound`.
        self.bounds: list[float] = list(child._upper_bounds)
        self.counts = [0] * len(self.bounds)
        self.total: float = child._sum.get()

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def flush(self) -> None:
        buckets = self.child._buckets
        counts = self.counts
        for index, count in enumerate(counts):
            if count:
                buckets[index].inc(count)
                counts[index] = 0
        self.child._sum.set(self.total)


class Tallied(Collector):
    """A Counter or Histogram registered through this collector, which brings its tallies in
    before every collection."""

    def __init__(self, metric: MetricWrapperBase, registry: CollectorRegistry) -> None:
        self.metric = metric
        self.tallies: list[CounterTally | HistogramTally] = []
        registry.register(self)

    def describe(self) -> Iterable[Any]:
        return self.metric.describe()

    def collect(self) -> Iterable[Any]:
        for tally in self.tallies:
            tally.flush()
        return self.metric.collect()

    def counter(self, *labels: str) -> CounterTally:
        metric = self.metric
        assert isinstance(metric, Counter)
        tally = CounterTally(metric.labels(*labels) if labels else metric)
        self.tallies.append(tally)
        return tally

    def histogram(self, *labels: str) -> HistogramTally:
        metric = self.metric
        assert isinstance(metric, Histogram)
        tally = HistogramTally(metric.labels(*labels) if labels else metric)
        self.tallies.append(tally)
        return tally
