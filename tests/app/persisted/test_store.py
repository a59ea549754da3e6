"""The in-process document store: least recently used out first, bounded in bytes of text."""

from __future__ import annotations

from app.persisted import MemoryStore


async def test_the_memory_store_drops_the_least_recently_used_past_its_bytes():
    store = MemoryStore(max_bytes=10)
    await store.put("a", "aaaa")
    await store.put("b", "bbbb")
    assert await store.get_many(["a"]) == {"a": "aaaa"}  # a is now the most recent
    await store.put("c", "cccc")
    assert await store.get_many(["a", "b", "c"]) == {"a": "aaaa", "c": "cccc"}
    assert store.bytes == 8


async def test_a_document_larger_than_the_store_is_not_kept():
    store = MemoryStore(max_bytes=3)
    await store.put("a", "aaaa")
    assert len(store) == 0 and store.bytes == 0
