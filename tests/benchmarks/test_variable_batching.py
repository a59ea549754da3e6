"""The variable-batching benchmark runs end to end against a real server and counts what it
claims: the 100 operations cost the SQL statements of one in both batched forms, and 100 apart.
(How fast anything is, is the benchmark's business, not a test's.)"""

from __future__ import annotations

import json

from benchmarks import variable_batching


def test_a_quick_run_reports_each_form_and_the_streamed_batch(tmp_path, capsys):
    env = {
        "BENCH_QUICK": "1",
        "BENCH_VB_SECONDS": "0.1",
        "BENCH_VB_REPEATS": "1",
        "BENCH_OUTPUT": str(tmp_path),
    }
    assert variable_batching.main(env) == 0
    results = json.loads((tmp_path / "variable_batching.json").read_text())
    statements = {f["form"]: f["statements_per_100_operations"] for f in results["forms"]}
    assert statements == {
        "100 variable sets, 1 request": 2,
        "JSON-array batch of 100, 1 request": 2,
        "100 separate requests": 200,
    }
    assert all(f["rounds"] >= 1 and f["operations_per_second"] > 0 for f in results["forms"])
    stream = results["stream"]
    assert stream["heavy_page_size"] in variable_batching.HEAVY_SIZES
    assert 0 < stream["streamed_first_ms"] <= stream["streamed_last_ms"]
    assert "| application/jsonl |" in capsys.readouterr().out
