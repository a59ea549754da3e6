"""The graphql-http audit suite (GraphQL over HTTP conformance) against the live server: every
audit must pass, MUST, SHOULD and MAY alike (no error, warning nor notice).

Needs Node.js and npm (the audits are the npm package `graphql-http`, pinned in
tests/audit/package-lock.json and installed into tests/audit/node_modules on first use). Without
them the test is skipped with the reason, except on CI where it must run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.live.required import unavailable

AUDIT_DIR = Path(__file__).resolve().parent.parent / "audit"
NPM_TIMEOUT_SECONDS = 300
AUDIT_TIMEOUT_SECONDS = 120


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        unavailable("Node.js and npm are needed to run the graphql-http audit (make audit)")
    if not (AUDIT_DIR / "node_modules" / "graphql-http").is_dir():
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--silent"],
            cwd=AUDIT_DIR,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_SECONDS,
        )
        if installed.returncode != 0:
            unavailable(f"`npm ci` in {AUDIT_DIR} failed: {installed.stderr.strip()[-500:]}")
    return node  # type: ignore[return-value]


def test_every_graphql_http_audit_passes(node, live_server):
    completed = subprocess.run(
        [node, str(AUDIT_DIR / "audit.mjs"), f"{live_server.url}/graphql", "--json"],
        capture_output=True,
        text=True,
        timeout=AUDIT_TIMEOUT_SECONDS,
    )
    assert completed.stdout, completed.stderr
    report = json.loads(completed.stdout)
    not_ok = [r for r in report["results"] if r["status"] != "ok"]
    assert not_ok == [], json.dumps(not_ok, indent=2)
    assert report["total"] >= 60
    assert completed.returncode == 0
