"""Variable batching and a streamed batch from Python with httpx.

    python examples/httpx_variable_batch.py [URL]

`variable_batch`: one document, many variable sets, one POST; the answer is a list in the order
of the sets, each entry tagged with its `variableIndex`. `stream_batch`: the same as
`application/jsonl`, each entry yielded the moment its line arrives (in the order they finish).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import httpx

BAKERY = "query($id: ID!) { bakery(id: $id) { id name } }"


def variable_batch(url: str, ids: list[str]) -> list[dict[str, Any]]:
    body = {"query": BAKERY, "variables": [{"id": i} for i in ids]}
    response = httpx.post(url, json=body, timeout=30)
    response.raise_for_status()
    answer: list[dict[str, Any]] = response.json()
    return answer


def stream_batch(url: str, batch: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    headers = {"Accept": "application/jsonl"}
    with httpx.stream("POST", url, json=batch, headers=headers, timeout=30) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line:
                yield json.loads(line)


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/graphql"
    for entry in variable_batch(url, ["1", "2", "3"]):
        print(entry["variableIndex"], entry["data"]["bakery"]["name"])
    batch = [
        {"query": BAKERY, "variables": [{"id": "4"}, {"id": "5"}]},
        {"query": "{ products { name } }"},
    ]
    for entry in stream_batch(url, batch):
        print("arrived:", entry.get("requestIndex"), entry.get("variableIndex"), entry["data"])
