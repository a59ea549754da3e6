"""Persisted documents on `/graphql`: Apollo's automatic persisted queries
(`extensions.persistedQuery.sha256Hash`) and the GraphQL-over-HTTP `documentId`, in every entry
of a batch, over GET and POST, against one store (`app/persisted`).

- An entry that names a document without its text gets the text from the store; a miss fails that
  entry alone (`PERSISTED_QUERY_NOT_FOUND`, which makes an APQ client send the text with the
  hash), and the others run. All the ids of a request are looked up at once (one Redis round trip).
- An entry with both the text and a `sha256:` id (APQ's second try) registers the text, once the
  hash is checked (a hash that is not the text's is refused: `PERSISTED_QUERY_HASH_MISMATCH`)
  and the document parses and validates (anything else is answered, and not stored).
  Registered through APQ, a document is reachable as `documentId: "sha256:<hash>"` too.
- Trusted documents (`BATCHERY_TRUSTED_DOCUMENTS_MANIFEST`): only the manifest's documents run,
  by id or by text; anything else is refused (`DOCUMENT_NOT_TRUSTED`) and nothing is registered.
- A persisted document's parse, validation, plans and cost are cached under its id (the
  executor's cache key), not under its text.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path

from app.http.params import Operation
from app.persisted import (
    DocumentStore,
    ManifestError,
    ManifestStore,
    MemoryStore,
    RedisStore,
    is_sha256_id,
    load_manifest,
    sha256_id,
)
from app.settings import Settings, SettingsError
from schema.execution import Executor, GraphQLRequest

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
NOT_TRUSTED = "DOCUMENT_NOT_TRUSTED"
MANIFEST_SETTING = "BATCHERY_TRUSTED_DOCUMENTS_MANIFEST"


def document_store(settings: Settings) -> DocumentStore:
    """The store the settings ask for; a manifest that cannot be used stops the start."""
    if settings.trusted_documents_manifest:
        try:
            return ManifestStore(load_manifest(Path(settings.trusted_documents_manifest)))
        except ManifestError as error:
            raise SettingsError(f"{MANIFEST_SETTING}: {error}") from None
    memory = MemoryStore(settings.persisted_documents_memory_bytes)
    if not settings.persisted_documents_redis_url:
        return memory
    return RedisStore(
        settings.persisted_documents_redis_url,
        settings.persisted_documents_key_prefix,
        settings.persisted_documents_ttl_seconds,
        memory,
    )


async def resolve_documents(
    operations: list[Operation],
    store: DocumentStore,
    valid: Callable[[str, str], bool] | None = None,
) -> list[Operation]:
    """The operations with every persisted document's text filled in, or their refusal.

    `valid(text, id)` says whether a document sent for registration parses and validates (the
    executor prepares it, and caches what it prepared under the id); only then is it stored,
    as Apollo Server does: otherwise any text with its hash is kept, a free key-value store."""
    if not persists(operations, store):
        return operations
    wanted = {key for operation in operations if (key := _lookup_key(operation, store))}
    found = await store.get_many(wanted) if wanted else {}
    resolved = []
    for operation in operations:
        request = operation.request
        if request is None or (request.document_id is None and not store.trusted):
            resolved.append(operation)
            continue
        answer = _resolve(request, found, store)
        if isinstance(answer, GraphQLRequest):
            if answer.query is not None and request.query is not None and not store.trusted:
                assert answer.document_id is not None
                if valid is None or valid(answer.query, answer.document_id):
                    await store.put(answer.document_id, answer.query)  # APQ registration
                # Preparing a new document takes milliseconds: let other requests run between
                # the registrations of a batch.
                await asyncio.sleep(0)
            resolved.append(dataclasses.replace(operation, request=answer))
        else:
            problem, code = answer
            resolved.append(
                Operation(None, problem, code, operation.request_index, operation.variable_index)
            )
    return resolved


def persists(operations: list[Operation], store: DocumentStore) -> bool:
    """Whether `resolve_documents` has anything to look up or register for these operations
    (most requests send their text and no id: then not)."""
    if store.trusted:
        return True
    for operation in operations:
        if operation.request is not None and operation.request.document_id is not None:
            return True
    return False


def validates(executor: Executor) -> Callable[[str, str], bool]:
    """Whether a document parses and validates (prepared under its id: planning reuses it)."""
    return lambda text, document_id: executor.prepare(text, document_id).document is not None


def _lookup_key(operation: Operation, store: DocumentStore) -> str | None:
    """The id this operation's document must be looked up under, if any."""
    request = operation.request
    if request is None:
        return None
    if request.query is None:
        return request.document_id
    if store.trusted:
        return request.document_id or sha256_id(request.query)
    return None


def _resolve(
    request: GraphQLRequest, found: dict[str, str], store: DocumentStore
) -> GraphQLRequest | tuple[str, str]:
    document_id = request.document_id
    if request.query is None:
        assert document_id is not None
        text = found.get(document_id)
        if text is None:
            return _not_trusted(document_id) if store.trusted else _not_found(document_id)
        return dataclasses.replace(request, query=text)
    own = sha256_id(request.query)
    if document_id is not None and is_sha256_id(document_id) and document_id != own:
        return (
            f"The document's SHA-256 is {own}, not the {document_id} sent with it: send the "
            "hash of the exact text (UTF-8, unchanged).",
            HASH_MISMATCH,
        )
    if store.trusted:
        key = document_id or own
        if found.get(key) != request.query:
            return _not_trusted(key)
        return dataclasses.replace(request, document_id=key)
    if document_id is not None and not is_sha256_id(document_id):
        return (
            f"Only `sha256:<hex>` ids can be registered with their text, not {document_id!r} "
            "(a custom id comes from a trusted manifest).",
            "BAD_REQUEST",
        )
    return request


def _not_found(document_id: str) -> tuple[str, str]:
    return (
        f"PersistedQueryNotFound: no document is stored under {document_id}. Send the request "
        "again with the document in `query` (and the same hash or id): it is then stored.",
        NOT_FOUND,
    )


def _not_trusted(document_id: str) -> tuple[str, str]:
    return (
        f"This server runs only its trusted documents, and {document_id} is not one of them "
        f"(the manifest set by {MANIFEST_SETTING}): add it to the manifest and deploy it.",
        NOT_TRUSTED,
    )
