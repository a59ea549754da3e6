"""`make soak` itself works and judges: a short run against a real server passes, and its verdict
fails on each thing it promises to catch (a 5xx, a leak, a temp file left)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.soak import MIB, Sample, Tally, judge, soak

SMOKE_SECONDS = 12
SMOKE_CLIENTS = 8


def test_a_short_soak_of_every_kind_of_request_passes(tmp_path):
    verdict = soak(SMOKE_SECONDS, SMOKE_CLIENTS, tmp_path)
    report = "\n".join(verdict.lines)
    assert verdict.passed, report
    for kind in ("query", "batch", "upload", "large_upload", "add_money", "bulk_create"):
        assert f"\n{kind} " in report
    assert (tmp_path / "server.log").exists()


def steady(seconds: int = 90) -> list[Sample]:
    return [Sample(float(t), 100 * MIB + (t % 3) * MIB, 40 + t % 2) for t in range(seconds)]


def clean_tally() -> Tally:
    tally = Tally()
    tally.record("query", "200", 0.01, None)
    return tally


def test_the_verdict_passes_a_steady_run():
    assert judge(clean_tally(), steady(), [], 90).passed


def test_the_verdict_fails_a_5xx():
    tally = clean_tally()
    tally.record("bulk_create", "500", 0.01, "500 Internal Server Error")
    verdict = judge(tally, steady(), [], 90)
    assert not verdict.passed and "500 Internal" in verdict.lines[-1]


def test_the_verdict_fails_memory_still_growing_in_the_last_third():
    growing = [Sample(s.at, s.rss + int(s.at * MIB), s.fds) for s in steady()]
    verdict = judge(clean_tally(), growing, [], 90)
    assert not verdict.passed and "memory still growing" in verdict.lines[-1]


def test_the_verdict_forgives_warm_up_growth_that_stops():
    warming = [Sample(s.at, s.rss + int(min(s.at, 50) * MIB), s.fds) for s in steady()]
    assert judge(clean_tally(), warming, [], 90).passed


def test_the_verdict_fails_descriptors_still_growing():
    leaking = [Sample(s.at, s.rss, s.fds + int(s.at)) for s in steady()]
    verdict = judge(clean_tally(), leaking, [], 90)
    assert not verdict.passed and "descriptors still growing" in verdict.lines[-1]


def test_the_verdict_fails_a_temp_file_left():
    verdict = judge(clean_tally(), steady(), [Path("uploads/req-1/part-0")], 90)
    assert not verdict.passed and "temporary files left" in verdict.lines[-1]
