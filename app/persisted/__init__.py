"""Persisted documents: GraphQL documents a client refers to by id instead of sending their text.

- `ids`: what a document id is (`sha256:<hex>` of the text, or a custom id from a manifest).
- `store`: where documents are kept: this process's memory (an LRU bounded in bytes), Redis
  (shared by every worker, with that LRU in front), or a trusted manifest (read only).
- `manifest`: reading Apollo's and Relay's persisted-query manifest files.

Nothing here knows GraphQL or HTTP: `app/http/persisted.py` turns requests into look-ups.
"""

from app.persisted.ids import apq_id, is_sha256_id, sha256_id
from app.persisted.manifest import ManifestError, load_manifest
from app.persisted.store import DocumentStore, ManifestStore, MemoryStore, RedisStore

__all__ = [
    "DocumentStore",
    "ManifestError",
    "ManifestStore",
    "MemoryStore",
    "RedisStore",
    "apq_id",
    "is_sha256_id",
    "load_manifest",
    "sha256_id",
]
