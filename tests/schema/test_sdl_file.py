"""`schema.graphql` at the project's root is the schema's SDL as `batchery schema` prints it: the
public schema, reviewable in a diff and usable by clients without running the server."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from schema import schema

SDL_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"
REGENERATE = "make schema  (or: .venv/bin/batchery schema > schema.graphql)"


def test_the_committed_sdl_is_the_schema_the_code_builds():
    printed = schema.as_str() + "\n"
    committed = SDL_FILE.read_text() if SDL_FILE.exists() else ""
    if committed != printed:
        diff = difflib.unified_diff(
            committed.splitlines(),
            printed.splitlines(),
            "schema.graphql (committed)",
            "batchery schema (the code)",
            lineterm="",
            n=1,
        )
        shown = "\n".join(list(diff)[:40])
        pytest.fail(
            f"schema.graphql is out of date with the code. Regenerate it with:\n    {REGENERATE}\n"
            f"then commit it. Differences (first 40 lines):\n{shown}",
            pytrace=False,
        )
