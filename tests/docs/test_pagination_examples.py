"""docs/pagination.md stays true: its walk-through runs, in order, against the app on a database
seeded as `make run` seeds it, and answers exactly what the page shows (cursors included: they are
deterministic for deterministic data)."""

from __future__ import annotations

from pathlib import Path

from tests.docs.test_bulk_examples import EXAMPLE, Example, demo_client

DOC = Path(__file__).resolve().parents[2] / "docs" / "pagination.md"

__all__ = ["demo_client"]  # the fixture, shared with the bulk docs' test


def examples() -> list[Example]:
    found = [
        Example(m["command"], int(m["status"]), m["body"])
        for m in EXAMPLE.finditer(DOC.read_text())
    ]
    assert len(found) >= 6, "the examples of docs/pagination.md were not found"
    return found


async def test_every_example_of_the_pagination_docs_answers_as_documented(demo_client):
    for number, example in enumerate(examples(), start=1):
        response = await demo_client.request(
            example.method, example.path, headers=example.headers, content=example.data
        )
        where = f"example {number} ({example!r}) in docs/pagination.md"
        assert response.status_code == example.status, f"{where}: {response.text}"
        assert response.json() == example.body, where
