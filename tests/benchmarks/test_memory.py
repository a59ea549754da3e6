"""The memory benchmark runs end to end against real servers and reports what it claims: a peak
growth per concurrent request for each query, and the line through them that gives the bound at
BATCHERY_MAX_RESULT_NODES. (How much memory is the benchmark's business, not a test's.)"""

from __future__ import annotations

import json

from benchmarks import memory


def test_a_quick_run_reports_growth_per_request_and_the_bound(tmp_path, capsys):
    env = {
        "BENCH_QUICK": "1",
        "BENCH_MEMORY_CONCURRENCY": "2",
        "BENCH_OUTPUT": str(tmp_path),
    }
    assert memory.main(env) == 0
    bursts = json.loads((tmp_path / "memory.json").read_text())
    assert [(b["query"], b["concurrency"]) for b in bursts] == [("big", 2), ("heavy", 2)]
    big, heavy = bursts
    # Two requests at once build their results at the same time: the process grows, and the
    # heaviest allowed query (31x the nodes) grows it more than big does.
    assert 0 < big["peak_growth_mib"] < heavy["peak_growth_mib"]
    assert big["nodes_per_request"] == 2_550 and heavy["nodes_per_request"] == 80_200
    assert all(b["cpu_ms_per_request"] > 0 for b in bursts)
    assert "at BATCHERY_MAX_RESULT_NODES (250,000) that is" in capsys.readouterr().out


def test_the_bound_is_the_line_through_big_and_heavy():
    def burst(query: str, nodes: int, per_request_mib: float) -> memory.Burst:
        return memory.Burst(query, 8, 100.0, per_request_mib * 8, per_request_mib, nodes, 0.0, 1.0)

    line = memory.bound([burst("big", 1_000, 2.0), burst("heavy", 11_000, 12.0)], 101_000)
    assert line is not None
    fixed, slope, at_cap = line
    assert slope == 2**20 / 1_000  # 10 MiB more for 10,000 more nodes
    assert fixed == 2**20  # 2 MiB at 1,000 nodes, 1 of them the nodes'
    assert at_cap == 2**20 + 101 * 2**20
    assert memory.bound([burst("big", 1_000, 2.0)], 101_000) is None
