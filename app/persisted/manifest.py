"""Trusted-documents manifests, in the two JSON formats client tooling writes:

- Apollo (`generate-persisted-query-manifest`): `{"format": "apollo-persisted-query-manifest",
  "version": 1, "operations": [{"id": "<sha256 hex>", "body": "...", "name": ..., "type": ...}]}`
- Relay (`relay-compiler` with `persistConfig.file`): `{"<id>": "<document text>", ...}`, the id an
  MD5 or SHA-256 hex by default.

Every document is reachable by `sha256:<hash of its text>` (what an APQ client sends), and by its
own id: `sha256:<id>` for Apollo, the raw id (a custom id) for Relay. An Apollo id that is not the
SHA-256 of its body is refused: the file is wrong, and the server must not start on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from app.persisted.ids import HEX64, SHA256_PREFIX, sha256_id

APOLLO_FORMAT = "apollo-persisted-query-manifest"


class ManifestError(ValueError):
    """The manifest cannot be used; the message names the file and what is wrong."""


def load_manifest(path: Path) -> dict[str, str]:
    """Document id -> text, for every id the manifest's documents are reachable by."""
    try:
        raw = orjson.loads(path.read_bytes())
    except OSError as error:
        raise ManifestError(f"cannot read the manifest {path}: {error.strerror}") from None
    except orjson.JSONDecodeError as error:
        raise ManifestError(f"the manifest {path} is not valid JSON: {error}") from None
    if isinstance(raw, dict) and raw.get("format") == APOLLO_FORMAT:
        return _apollo(path, raw)
    if isinstance(raw, dict) and all(isinstance(v, str) for v in raw.values()):
        return _relay(path, raw)
    raise ManifestError(
        f"the manifest {path} is neither Apollo's persisted-query manifest "
        f'({{"format": "{APOLLO_FORMAT}", "operations": [...]}}) nor Relay\'s '
        '({"<id>": "<document>", ...})'
    )


def _apollo(path: Path, raw: dict[str, Any]) -> dict[str, str]:
    if raw.get("version") != 1:
        raise ManifestError(f"{path}: only version 1 of {APOLLO_FORMAT} is known")
    documents: dict[str, str] = {}
    for position, operation in enumerate(raw.get("operations") or []):
        body = operation.get("body") if isinstance(operation, dict) else None
        declared = operation.get("id") if isinstance(operation, dict) else None
        if not isinstance(body, str) or not isinstance(declared, str):
            raise ManifestError(f"{path}: operation {position} needs a string `id` and `body`")
        own = sha256_id(body)
        if own != SHA256_PREFIX + declared.lower():
            raise ManifestError(
                f"{path}: operation {position} ({operation.get('name')}) has id {declared}, "
                f"but its body's SHA-256 is {own.removeprefix(SHA256_PREFIX)}"
            )
        documents[own] = body
    return documents


def _relay(path: Path, raw: dict[str, str]) -> dict[str, str]:
    documents: dict[str, str] = {}
    for declared, body in raw.items():
        own = sha256_id(body)
        documents[own] = body
        if ":" in declared:
            raise ManifestError(f"{path}: the id {declared!r} holds a colon (a custom id has none)")
        if HEX64.fullmatch(declared.lower()) and own == SHA256_PREFIX + declared.lower():
            continue  # a SHA-256 id: reachable as sha256:<id> already
        documents[declared] = body
    return documents
