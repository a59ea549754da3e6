"""The architecture the README draws, as import-linter contracts: kept by the code, and run by
`make lint` so that a crossing fails there too."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_layer_contracts_are_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    completed = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "0 broken" in completed.stdout


def test_the_contracts_cover_the_layers_of_the_readme():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contracts = {c["type"]: c for c in reversed(config["contracts"])}
    assert contracts["layers"]["layers"] == ["app.http", "schema", "loaders | app.bulk", "app.db"]
    forbidden = {
        source: set(c["forbidden_modules"])
        for c in config["contracts"]
        if c["type"] == "forbidden"
        for source in c["source_modules"]
    }
    assert {"schema", "app"} <= forbidden["loaders"]
    for lower in ("app.db", "app.bulk"):
        assert {"schema", "strawberry", "graphql", "app.http", "app.settings"} <= forbidden[lower]
    assert "lint-imports" in (ROOT / "Makefile").read_text()
