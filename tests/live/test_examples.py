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


def test_node_apollo_persisted_queries_over_batch_http_link(live_server):
    """Apollo's own PersistedQueryLink + BatchHttpLink: misses are per entry, so only the
    operations that missed are resent with their text, and the rest of the batch ran."""
    node, project = node_project()
    output = json.loads(
        run([node, "apollo-persisted.mjs", f"{live_server.url}/graphql"], cwd=project)
    )
    first, second = output["runs"]
    # [entries carrying their text, entries] per POST.
    assert first["posts"] == [[0, 2], [2, 2]]  # all hashes missed; resent with text
    assert second["posts"] == [[0, 3], [1, 1]]  # two hits; only the new document resent
    assert first["data"][0]["bakery"]["id"] == "1"
    assert [d["bakery"]["id"] for d in second["data"] if "bakery" in d] == ["2", "4"]
    assert second["data"][1]["products"] == first["data"][1]["products"]


def test_node_fetch_reads_a_jsonl_stream(live_server):
    node, project = node_project()
    arrived = json.loads(run([node, "jsonl-stream.mjs", f"{live_server.url}/graphql"], cwd=project))
    places = sorted((e["requestIndex"], e.get("variableIndex", -1)) for e in arrived)
    assert places == [(0, 0), (0, 1), (0, 2), (1, -1)]
    bakeries = {
        e["variableIndex"]: e["data"]["bakery"]["id"] for e in arrived if "variableIndex" in e
    }
    assert bakeries == {0: "1", 1: "2", 2: "3"}


def test_httpx_variable_batch_and_jsonl_stream(live_server):
    spec = importlib.util.spec_from_file_location(
        "httpx_variable_example", EXAMPLES / "httpx_variable_batch.py"
    )
    assert spec and spec.loader
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    url = f"{live_server.url}/graphql"
    answer = example.variable_batch(url, ["3", "1", "2"])
    assert [(e["variableIndex"], e["data"]["bakery"]["id"]) for e in answer] == [
        (0, "3"),
        (1, "1"),
        (2, "2"),
    ]
    batch = [
        {"query": example.BAKERY, "variables": [{"id": "4"}, {"id": "5"}]},
        {"query": "{ products { name } }"},
    ]
    arrived = list(example.stream_batch(url, batch))
    assert sorted((e["requestIndex"], e.get("variableIndex", -1)) for e in arrived) == [
        (0, 0),
        (0, 1),
        (1, -1),
    ]


def test_curl_variable_batch(live_server):
    needs("curl")
    results = json.loads(run(["sh", "curl-variable-batch.sh", f"{live_server.url}/graphql"]))
    assert [r["variableIndex"] for r in results] == [0, 1, 2]
    assert all(len(r["data"]["bakery"]["orders"]) == 2 for r in results)


def test_curl_jsonl_stream(live_server):
    needs("curl")
    lines = run(["sh", "curl-jsonl-stream.sh", f"{live_server.url}/graphql"]).splitlines()
    entries = [json.loads(line) for line in lines if line]
    assert sorted((e["requestIndex"], e.get("variableIndex", -1)) for e in entries) == [
        (0, 0),
        (0, 1),
        (1, -1),
    ]


def test_curl_persisted(live_server):
    needs("curl")
    needs("sha256sum")
    answers = [
        json.loads(line)
        for line in run(["sh", "curl-persisted.sh", live_server.url + "/graphql"]).splitlines()
    ]
    assert answers[0]["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert [a["data"]["bakery"]["id"] for a in answers[1:]] == ["1", "2", "3", "4"]
