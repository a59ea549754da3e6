"""The in-process document store: least recently used out first, bounded in bytes of memory."""

from __future__ import annotations

import tracemalloc

from app.persisted import MemoryStore, sha256_id
from app.persisted.store import footprint


async def test_the_memory_store_drops_the_least_recently_used_past_its_bytes():
    size = footprint("a", "aaaa")
    store = MemoryStore(max_bytes=2 * size + size // 2)
    await store.put("a", "aaaa")
    await store.put("b", "bbbb")
    assert await store.get_many(["a"]) == {"a": "aaaa"}  # a is now the most recent
    await store.put("c", "cccc")
    assert await store.get_many(["a", "b", "c"]) == {"a": "aaaa", "c": "cccc"}
    assert store.bytes == 2 * size


async def test_a_document_larger_than_the_store_is_not_kept():
    store = MemoryStore(max_bytes=footprint("a", "aaaa") - 1)
    await store.put("a", "aaaa")
    assert len(store) == 0 and store.bytes == 0


async def test_a_flood_of_tiny_documents_holds_no_more_memory_than_the_bound():
    # Each entry costs its key, its text object and the dictionary's slot, not just its
    # characters: counted by characters, 1 MiB of 20-character documents held some 15 MiB.
    limit = 1024 * 1024
    texts = [f"{{__typename}}#{i}" for i in range(60_000)]
    ids = [sha256_id(text) for text in texts]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store = MemoryStore(max_bytes=limit)
        for document_id, text in zip(ids, texts, strict=True):
            store.add(document_id, text)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert 0 < len(store) < len(texts)  # the bound was reached and enforced
    assert held <= limit * 1.1, f"{held} bytes held for a {limit}-byte store"


async def test_a_document_of_wide_characters_counts_the_memory_it_takes():
    # Python keeps a text with one emoji at 4 bytes a character: 1,000 of them are ~4 KB.
    text = "\N{GRINNING FACE}" * 1000
    store = MemoryStore(max_bytes=3000)
    await store.put("wide", text)
    assert len(store) == 0
