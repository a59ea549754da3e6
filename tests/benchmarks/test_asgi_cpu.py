"""The in-process ASGI harness answers `{ __typename }` through the real app and reports a CPU
time per request (how much is the harness's business, not a test's)."""

from __future__ import annotations

import asyncio

from benchmarks import asgi_cpu


def test_it_measures_the_hello_request_through_the_whole_app():
    results = asyncio.run(asgi_cpu.measure(requests=5, repetitions=2, profile=False))
    assert len(results) == 2 and all(r > 0 for r in results)


def test_small_runs_the_bench_query_against_the_seeded_demo_data():
    # The harness refuses an answer with errors, or an empty page (no demo data seeded).
    results = asyncio.run(
        asgi_cpu.measure(requests=3, repetitions=1, profile=False, body=asgi_cpu.SMALL_BODY)
    )
    assert len(results) == 1 and results[0] > 0


def test_uvicorn_mode_answers_through_the_serve_protocol():
    # The harness refuses anything but a 200 written by the protocol to its transport.
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        results = runner.run(asgi_cpu.measure_uvicorn(requests=5, repetitions=2))
    assert len(results) == 2 and all(r > 0 for r in results)
