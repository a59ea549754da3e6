"""Where persisted documents are kept, one key per document id.

- `MemoryStore`: this process's memory, least recently used first out, bounded in bytes of memory
  (a registration is a client's whole document, up to the size of a request; a flood of tiny
  ones costs their keys and slots too, so each entry is charged what it holds, not its length).
- `RedisStore`: one store for every worker (a document registered through one is found by the
  others), each key expiring after a TTL refreshed by registration. A `MemoryStore` sits in front:
  a document never changes under its id, so what was read once is served from memory after. When
  Redis fails, the store degrades to that memory and says so in the log: a miss then makes an APQ
  client send the text again, which runs; nothing is refused for the outage.
- `ManifestStore`: the documents of a trusted manifest, read only (`trusted`): the server runs
  these and nothing else.
"""

from __future__ import annotations

import logging
import sys
from collections import OrderedDict
from collections.abc import Collection, Mapping
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger("batchery.persisted")

# What one entry of the ordered dictionary costs beyond its key and text objects (its hash
# table slot and ordering node, with room for the table's growth): measured ~90 bytes.
ENTRY_OVERHEAD = 128


def footprint(document_id: str, text: str) -> int:
    """The memory an entry holds: counted by characters, a flood of 20-character documents
    held 15 times the bound, and a text of emoji 4 times its length."""
    return sys.getsizeof(document_id) + sys.getsizeof(text) + ENTRY_OVERHEAD


class DocumentStore(Protocol):
    # True: only the stored documents may run, and nothing can be registered.
    trusted: bool

    async def get_many(self, ids: Collection[str]) -> dict[str, str]:
        """The texts of the ids that are stored (the others are left out)."""
        ...

    async def put(self, document_id: str, text: str) -> None: ...

    async def close(self) -> None: ...


class MemoryStore:
    trusted = False

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._documents: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._documents)

    def get(self, document_id: str) -> str | None:
        text = self._documents.get(document_id)
        if text is not None:
            self._documents.move_to_end(document_id)
        return text

    def add(self, document_id: str, text: str) -> None:
        size = footprint(document_id, text)
        if size > self.max_bytes or document_id in self._documents:
            return
        self._documents[document_id] = text
        self.bytes += size
        while self.bytes > self.max_bytes:
            dropped_id, dropped = self._documents.popitem(last=False)
            self.bytes -= footprint(dropped_id, dropped)

    async def get_many(self, ids: Collection[str]) -> dict[str, str]:
        return {i: text for i in ids if (text := self.get(i)) is not None}

    async def put(self, document_id: str, text: str) -> None:
        self.add(document_id, text)

    async def close(self) -> None:
        return None


class RedisStore:
    trusted = False

    def __init__(self, url: str, prefix: str, ttl_seconds: int, memory: MemoryStore) -> None:
        self.redis: Redis = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.prefix = f"{prefix}:persisted:"
        self.ttl = ttl_seconds or None
        self.memory = memory

    async def get_many(self, ids: Collection[str]) -> dict[str, str]:
        found = await self.memory.get_many(ids)
        missing = [i for i in ids if i not in found]
        if not missing:
            return found
        try:
            values = await self.redis.mget([self.prefix + i for i in missing])
        except RedisError as error:
            logger.warning("persisted documents: Redis unavailable (%s), memory only", error)
            return found
        for document_id, value in zip(missing, values, strict=True):
            if value is not None:
                text = value.decode()
                self.memory.add(document_id, text)
                found[document_id] = text
        return found

    async def put(self, document_id: str, text: str) -> None:
        self.memory.add(document_id, text)
        try:
            await self.redis.set(self.prefix + document_id, text.encode(), ex=self.ttl)
        except RedisError as error:
            logger.warning("persisted documents: Redis unavailable (%s), kept in memory", error)

    async def close(self) -> None:
        await self.redis.aclose()


class ManifestStore:
    trusted = True

    def __init__(self, documents: Mapping[str, str]) -> None:
        self.documents = dict(documents)

    async def get_many(self, ids: Collection[str]) -> dict[str, str]:
        return {i: self.documents[i] for i in ids if i in self.documents}

    async def put(self, document_id: str, text: str) -> None:
        raise AssertionError("a trusted manifest is read only")

    async def close(self) -> None:
        return None
