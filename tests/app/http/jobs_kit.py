"""What the API tests of bulk jobs share: files of records, keys, and reading an SSE body."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import httpx

from app.db import keys

GOOD_REGION = "SOUTH_WEST"


def bakeries_jsonl(count: int, bad_lines: frozenset[int] = frozenset()) -> bytes:
    """`count` bakeries, one per line; the lines in `bad_lines` (1-based) have an unknown
    region, which the bulk engine refuses record by record."""
    lines = []
    for line in range(1, count + 1):
        region = "ATLANTIS" if line in bad_lines else GOOD_REGION
        lines.append(json.dumps({"name": f"Job bakery {line}", "region": region}))
    return ("\n".join(lines) + "\n").encode()


def lines_of(content: bytes, numbers: frozenset[int]) -> list[bytes]:
    every = content.splitlines()
    return [every[n - 1] for n in sorted(numbers)]


async def new_key(engine, *scopes: str) -> str:
    return (await keys.create_key(engine, "jobs-test", scopes)).key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def sse_events(text: str) -> Iterator[tuple[str, dict | None]]:
    """(event, parsed data) of a whole Server-Sent Events body."""
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data or event != "message":
            joined = "\n".join(data)
            yield event, json.loads(joined) if joined else None


def check_progress_order(events: list[dict]) -> None:
    """Counts never go backwards; exactly one final event, the last."""
    processed = [event["processed"] for event in events]
    assert processed == sorted(processed), processed
    for earlier, later in itertools.pairwise(events):
        assert later["succeeded"] >= earlier["succeeded"]
        assert later["failed"] >= earlier["failed"]
    assert [event["final"] for event in events].count(True) == 1
    assert events[-1]["final"] is True


async def rest_events(client: httpx.AsyncClient, job_id: str, key: str) -> list[dict]:
    """The job's progress over `GET /api/jobs/{id}/events`, to its final event."""
    response = await client.get(f"/api/jobs/{job_id}/events", headers=bearer(key))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [data for event, data in sse_events(response.text) if event == "progress"]
    assert all(data is not None for data in events)
    return events  # type: ignore[return-value]
