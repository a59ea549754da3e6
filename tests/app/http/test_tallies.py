"""Tallies (app/http/tallies.py) expose what prometheus_client's own `observe`/`inc` would, to
the bit, whenever the registry is collected."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from app.http.metrics import LATENCY_BUCKETS
from app.http.tallies import CounterTally, HistogramTally, Tallied


def _pair() -> tuple[CollectorRegistry, Histogram, Counter, CollectorRegistry, Tallied, Tallied]:
    direct = CollectorRegistry()
    histogram = Histogram("t_seconds", "Time.", ["path"], buckets=LATENCY_BUCKETS, registry=direct)
    counter = Counter("t_requests", "Requests.", ["status"], registry=direct)
    tallied = CollectorRegistry()
    tallied_histogram = Tallied(
        Histogram("t_seconds", "Time.", ["path"], buckets=LATENCY_BUCKETS, registry=None), tallied
    )
    tallied_counter = Tallied(
        Counter("t_requests", "Requests.", ["status"], registry=None), tallied
    )
    return direct, histogram, counter, tallied, tallied_histogram, tallied_counter


def test_the_exposition_is_the_same_between_and_after_scrapes() -> None:
    direct, histogram, counter, tallied, tallied_histogram, tallied_counter = _pair()
    # Children made on first use, as `Metrics` does: a child exists (at 0) once made.
    tallies: dict[str, HistogramTally] = {}
    counts: dict[str, CounterTally] = {}
    rng = random.Random(12)
    # Bounds exactly, beyond the last, and sums whose rounding depends on the order of additions.
    values = [*LATENCY_BUCKETS, 11.0, 1e-9, 0.1, 0.2, 0.3]
    for step in range(3000):
        path = rng.choice(("/a", "/b"))
        value = rng.choice(values) if step % 3 == 0 else rng.random() * rng.choice((0.01, 1, 20))
        histogram.labels(path).observe(value)
        if path not in tallies:
            tallies[path] = tallied_histogram.histogram(path)
        tallies[path].observe(value)
        status = rng.choice(("200", "400"))
        counter.labels(status).inc()
        if status not in counts:
            counts[status] = tallied_counter.counter(status)
        counts[status].inc()
        if step % 997 == 0:
            assert generate_latest(tallied) == generate_latest(direct)
    exposed = generate_latest(tallied)
    assert exposed == generate_latest(direct)
    assert b't_seconds_bucket{le="+Inf",path="/a"}' in exposed
    # Collected again with nothing new: unchanged (nothing is added twice).
    assert generate_latest(tallied) == exposed


def test_an_unlabelled_histogram_and_integers() -> None:
    direct = CollectorRegistry()
    histogram = Histogram("sizes", "Sizes.", buckets=(1, 2, 5), registry=direct)
    tallied = CollectorRegistry()
    tally = Tallied(Histogram("sizes", "Sizes.", buckets=(1, 2, 5), registry=None), tallied)
    sizes = tally.histogram()
    for size in (1, 1, 2, 3, 5, 6, 100, 0):
        histogram.observe(size)
        sizes.observe(size)
    assert generate_latest(tallied) == generate_latest(direct)
