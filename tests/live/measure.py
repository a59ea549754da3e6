"""Rough transport figures against a live server (not a test: numbers depend on the machine).

    .venv/bin/python -m tests.live.server -- .venv/bin/python -m tests.live.measure --url

(a fresh server, seeded small, in one process and the client in another), or against a running
server:

    .venv/bin/python -m tests.live.measure --url http://127.0.0.1:8000/graphql

For 20 operations sent as 20 POSTs, as one JSON batch, and as one batch of identical queries: the
SQL statements they cost (from /metrics) and the median wall time. Then one 20 MiB upload.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import socket
import statistics
import time
from collections.abc import Callable

import httpx

K = 20
NESTED = (
    "query($id: ID!) { bakery(id: $id) "
    "{ name orders(limitTo: 5) { id writtenPhrase } manager { lastName } } }"
)
SAME = "{ bakeries(first: 6) { name orders(limitTo: 5) { id writtenPhrase } } }"


def statements(client: httpx.Client) -> float:
    text = client.get("/metrics").text
    match = re.search(r"^batchery_db_statements_total (\S+)$", text, re.M)
    assert match
    return float(match.group(1))


def measure(client: httpx.Client, send: Callable[[], None], rounds: int) -> tuple[float, float]:
    before = statements(client)
    send()
    cost = statements(client) - before
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        send()
        times.append(time.perf_counter() - started)
    return cost, statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--url", required=True, help="the server's /graphql URL")
    args = parser.parse_args()
    rounds = args.rounds
    base_url = args.url.removesuffix("/graphql")
    # TCP_NODELAY: httpx writes headers and body separately, and Nagle's algorithm would hold the
    # body back for the server's delayed ACK (~40 ms per request on loopback).
    nodelay = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    with httpx.Client(base_url=base_url, timeout=60, transport=nodelay) as client:
        different = [{"query": NESTED, "variables": {"id": str(1 + i % 6)}} for i in range(K)]
        cases = {
            f"{K} POSTs, one nested query each": lambda: [
                client.post("/graphql", json=op).raise_for_status() for op in different
            ],
            f"1 POST, batch of {K} nested queries (6 distinct ids)": lambda: client.post(
                "/graphql", json=different
            ).raise_for_status(),
            f"{K} POSTs, the same query": lambda: [
                client.post("/graphql", json={"query": SAME}).raise_for_status() for _ in range(K)
            ],
            f"1 POST, batch of {K} identical queries": lambda: client.post(
                "/graphql", json=[{"query": SAME}] * K
            ).raise_for_status(),
        }
        print(f"{'case':58} {'SQL':>5} {'median ms':>10}")
        for name, send in cases.items():
            cost, median = measure(client, send, rounds)
            print(f"{name:58} {cost:5.0f} {median:10.1f}")

        content = b"\x89PNG\r\n\x1a\n" + os.urandom(20 * 1024 * 1024 - 1032)
        upload = 'mutation($f: Upload!) { uploadOrderPhoto(orderId: "1", file: $f) { sha256 } }'
        started = time.perf_counter()
        response = client.post(
            "/graphql",
            data={
                "operations": json.dumps({"query": upload, "variables": {"f": None}}),
                "map": json.dumps({"0": ["variables.f"]}),
            },
            files={"0": ("big.bin", content, "application/octet-stream")},
            headers={"GraphQL-Preflight": "1"},
        )
        elapsed = time.perf_counter() - started
        digest = response.json()["data"]["uploadOrderPhoto"]["sha256"]
        assert digest == hashlib.sha256(content).hexdigest()
        print(f"20 MiB upload, stored and hashed: {elapsed * 1000:.0f} ms, sha256 matches")


if __name__ == "__main__":
    main()
