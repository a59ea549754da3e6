"""What a GraphQL request may make the server prepare, decided before anything is parsed.

Preparing a document (parse, validate, cost) is CPU spent before the request is charged, since
its charge is the cost that preparing finds. Two bounds keep that work small for a client that
should get nothing:

- The document text a request sends that the executor has not cached (each text once, however
  often a batch repeats it) is at most `BATCHERY_MAX_NEW_DOCUMENT_BYTES_PER_REQUEST`: over it the
  request is refused whole (413), nothing parsed. Cached documents count nothing, so a client
  sending the documents it always sends is never near it.
- With rate limiting on, a client whose budget is spent is refused (429 and `Retry-After`, as
  any throttled request) before its new documents are parsed: a refusal would follow anyway.
  Only a request with new text pays this look-up; one of cached documents is charged as before.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from app.http.errors import too_large
from app.http.params import Operation
from app.http.throttle import Throttled, refuse_if_spent
from app.settings import Settings
from schema.execution import Executor

SETTING = "max_new_document_bytes_per_request"


def new_document_bytes(operations: list[Operation], executor: Executor) -> int:
    """The UTF-8 bytes of the distinct document texts the executor would have to prepare."""
    fresh: set[str] = set()
    total = 0
    for operation in operations:
        request = operation.request
        if request is None or request.query is None:
            continue  # a persisted id: its text was validated when it was stored
        key = request.cache_key
        if key is None or key in fresh or executor.is_cached(key):
            continue
        fresh.add(key)
        total += len(request.query.encode("utf-8", "surrogatepass"))
    return total


def check_new_documents(size: int, settings: Settings) -> None:
    """Refuse (413) a request whose new document text is over the per-request limit."""
    limit = settings.max_new_document_bytes_per_request
    if size > limit:
        raise too_large(
            f"The request's documents not already known to the server are {size} bytes "
            "together: send fewer new documents per request, or persist them (APQ, documentId). "
            "Nothing was parsed",
            "DOCUMENTS_TOO_LARGE",
            SETTING,
            limit,
        )


async def admit(
    request: HTTPConnection,
    operations: list[Operation],
    executor: Executor,
    settings: Settings,
    *,
    charged: bool,
) -> None:
    """Before any document is parsed (app/http/admission.py): the new text is within its limit,
    and a client with no budget left is refused now rather than after the parsing."""
    fresh = new_document_bytes(operations, executor)
    check_new_documents(fresh, settings)
    if fresh and charged:
        try:
            await refuse_if_spent(request, api="graphql", operations=len(operations))
        except Throttled as refusal:
            raise refusal.request_error() from None
