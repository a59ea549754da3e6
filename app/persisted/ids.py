"""Document ids (GraphQL over HTTP, Appendix A "Persisted Documents"): `sha256:` followed by the
lower-case hex SHA-256 of the document's UTF-8 text, or a custom id (no colon) that only a
manifest can give meaning to. Apollo's APQ hash is the same SHA-256, so a document registered
through APQ is reachable as `documentId: "sha256:<hash>"` too: one key for both."""

from __future__ import annotations

import hashlib
import re

SHA256_PREFIX = "sha256:"
HEX64 = re.compile(r"[0-9a-f]{64}")


def sha256_id(text: str) -> str:
    return SHA256_PREFIX + hashlib.sha256(text.encode()).hexdigest()


def apq_id(sha256_hash: str) -> str:
    """The document id of an APQ `sha256Hash` (hex, any case)."""
    return SHA256_PREFIX + sha256_hash.lower()


def is_sha256_id(document_id: str) -> bool:
    prefix, colon, payload = document_id.partition(":")
    return bool(colon) and prefix == "sha256" and HEX64.fullmatch(payload) is not None
