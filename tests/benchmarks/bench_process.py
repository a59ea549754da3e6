"""A benchmark module run as `make bench` runs it: its own process, only the `BENCH_*` settings
the test gives (none of the caller's `BENCH_*`/`BATCHERY_*` leak in)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_bench(module: str, settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BENCH_", "BATCHERY_"))},
        **settings,
    }
    completed = subprocess.run(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed
