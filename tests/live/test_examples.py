"""The examples in examples/ work as written, against a live server."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

from tests.live.required import unavailable

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PHOTOS = {
    path.name: hashlib.sha256(path.read_bytes()).hexdigest()
    for path in (EXAMPLES / "files").glob("*.png")
}
TIMEOUT_SECONDS = 120


def run(command: list[str], cwd: Path = EXAMPLES) -> str:
    completed = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_SECONDS
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def uploaded(results: list[dict]) -> list[tuple[str, str]]:
    return [
        (r["data"]["uploadOrderPhoto"]["filename"], r["data"]["uploadOrderPhoto"]["sha256"])
        for r in results
        if "uploadOrderPhoto" in (r.get("data") or {})
    ]


def needs(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        unavailable(f"{tool} is not installed (the examples need it)")
    assert found is not None
    return found


def test_curl_json_batch(live_server):
    needs("curl")
    results = json.loads(run(["sh", "curl-json-batch.sh", f"{live_server.url}/graphql"]))
    assert [list(r["data"]) for r in results] == [["bakery"], ["bakery"], ["addMoney"]]
    assert all("errors" not in r for r in results)


def test_curl_single_upload(live_server):
    needs("curl")
    result = json.loads(run(["sh", "curl-single-upload.sh", f"{live_server.url}/graphql"]))
    assert uploaded([result]) == [("strawberry-cake.png", PHOTOS["strawberry-cake.png"])]


def test_curl_multipart_batch(live_server):
    needs("curl")
    results = json.loads(run(["sh", "curl-multipart-batch.sh", f"{live_server.url}/graphql"]))
    assert uploaded(results) == [
        ("strawberry-cake.png", PHOTOS["strawberry-cake.png"]),
        ("lemon-cake.png", PHOTOS["lemon-cake.png"]),
        ("lemon-cake.png", PHOTOS["lemon-cake.png"]),
    ]
    assert results[3]["data"]["cakeOrder"]["id"] == "1"


def test_httpx_multipart_batch(live_server):
    spec = importlib.util.spec_from_file_location(
        "httpx_example", EXAMPLES / "httpx_multipart_batch.py"
    )
    assert spec and spec.loader
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    photos = sorted((EXAMPLES / "files").glob("*.png"))
    results = example.upload_batch(f"{live_server.url}/graphql", photos)
    assert uploaded(results) == [(p.name, PHOTOS[p.name]) for p in photos]
    assert results[-1]["data"]["cakeOrder"]["id"] == "1"


def node_project() -> tuple[str, Path]:
    """node and examples/node with its locked packages installed."""
    node, npm = needs("node"), needs("npm")
    project = EXAMPLES / "node"
    installed = project / "node_modules" / ".package-lock.json"
    lock = project / "package-lock.json"
    if not installed.is_file() or installed.stat().st_mtime < lock.stat().st_mtime:
        run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=project)
    return node, project


def test_node_extract_files_batch(live_server):
    node, project = node_project()
    output = run([node, "upload-batch.mjs", f"{live_server.url}/graphql"], cwd=project)
    status, _, payload = output.partition(" ")
    assert status == "200"
    results = json.loads(payload)
    assert uploaded(results) == [
        ("strawberry-cake.png", PHOTOS["strawberry-cake.png"]),
        ("lemon-cake.png", PHOTOS["lemon-cake.png"]),
    ]
    assert len(results[2]["data"]["products"]) == 4


def test_node_apollo_client_batch_and_upload(live_server):
    node, project = node_project()
    output = json.loads(run([node, "apollo-client.mjs", f"{live_server.url}/graphql"], cwd=project))
    # Three queries in one POST (BatchHttpLink), answered in the order asked; then one upload.
    assert [bakery["id"] for bakery in output["queries"]] == ["3", "1", "2"]
    assert all(bakery["name"] for bakery in output["queries"])
    photo = output["upload"]["uploadOrderPhoto"]
    assert (photo["filename"], photo["sha256"]) == (
        "strawberry-cake.png",
        PHOTOS["strawberry-cake.png"],
    )
    assert output["posts"] == 2
