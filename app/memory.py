"""Keeping the garbage collector off what lives as long as the process.

A server process holds ~100,000 objects from start-up (modules, classes, the schema, compiled
statements) that never become garbage, yet every full collection of the cyclic garbage collector
walks all of them, and a busy server runs full collections often. `gc.freeze()` moves them to a
generation the collector skips. Objects still die by reference counting as usual; only reference
cycles created at start-up and dropped later would stay, which is why start-up garbage is
collected first.
"""

from __future__ import annotations

import gc

_frozen = False


def freeze_startup_objects() -> bool:
    """Once per process, after start-up: collect, then freeze what survived. Returns whether
    this call did it."""
    global _frozen
    if _frozen:
        return False
    gc.collect()
    gc.freeze()
    _frozen = True
    return True
