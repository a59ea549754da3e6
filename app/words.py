"""Counts in messages read as English: "1 operation", "2 operations" (never "1 operations")."""

from __future__ import annotations


def counted(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"
