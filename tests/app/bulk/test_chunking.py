"""The adaptive chunk size, fed durations (no real work is timed)."""

from __future__ import annotations

import pytest

from app.bulk.chunking import AdaptiveChunker


def sizer(**changes: float) -> AdaptiveChunker:
    values = {"target_seconds": 1.0, "minimum": 10, "maximum": 400, "size": 50, **changes}
    return AdaptiveChunker(**values)  # type: ignore[arg-type]


def test_fast_chunks_grow_at_most_by_the_step_until_the_maximum():
    chunker = sizer()
    sizes = [chunker.record(chunker.size, 0.01) for _ in range(5)]
    assert sizes == [100, 200, 400, 400, 400]


def test_slow_chunks_shrink_at_most_by_the_step_until_the_minimum():
    chunker = sizer(size=200)
    sizes = [chunker.record(chunker.size, 30.0) for _ in range(6)]
    assert sizes == [100, 50, 25, 12, 10, 10]


def test_a_moderate_miss_moves_straight_to_the_size_that_hits_the_target():
    chunker = sizer(size=100)
    assert chunker.record(100, 1.6) == 62  # 100 records in 1.6 s: 62 take 1 s
    assert chunker.record(62, 0.62) == 100  # 62 in 0.62 s: 100 take 1 s


def test_within_the_tolerance_band_the_size_stays():
    chunker = sizer(size=100, tolerance=0.2)
    assert [chunker.record(100, seconds) for seconds in (0.81, 1.0, 1.19)] == [100, 100, 100]
    assert chunker.record(100, 1.3) == 77


def test_a_short_last_chunk_is_judged_by_its_rate():
    chunker = sizer(size=100)
    # 10 records in 0.5 s is 5 s per 100: slow, although the chunk itself was quick.
    assert chunker.record(10, 0.5) == 50


def test_zero_duration_grows_and_empty_chunks_change_nothing():
    chunker = sizer(size=100)
    assert chunker.record(0, 5.0) == 100
    assert chunker.record(100, 0.0) == 200


def test_the_initial_size_is_kept_within_bounds():
    assert sizer(size=5).size == 10
    assert sizer(size=1000).size == 400


@pytest.mark.parametrize(
    "changes",
    [{"minimum": 0}, {"minimum": 50, "maximum": 40}, {"target_seconds": 0}, {"max_step": 1.0}],
)
def test_unusable_settings_are_refused(changes):
    with pytest.raises(ValueError):
        sizer(**changes)
