"""Counts in messages."""

from __future__ import annotations

from app.words import counted


def test_one_is_singular_and_every_other_count_plural():
    assert counted(1, "operation") == "1 operation"
    assert counted(0, "operation") == "0 operations"
    assert counted(2, "file") == "2 files"
    assert counted(3, "entry", "entries") == "3 entries"
