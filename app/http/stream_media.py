"""Whether a `/graphql` answer is streamed, and in which encoding, from the request's `Accept`.

The batching appendix drafted in graphql/graphql-over-http makes `application/jsonl` the encoding
every server that batches must support; Hot Chocolate also streams `text/event-stream` and
`multipart/mixed`. A streamed type is chosen only when the client names it explicitly (wildcards
keep today's JSON) with a quality at least that of any JSON type it names: a client that accepts
both prefers the stream, as the draft asks. Without one, the answer is JSON as before.

Kept apart from `app/http/graphql.py` so that other streamed answers on `/graphql` (GraphQL over
SSE for a subscription) negotiate in their own module and the endpoint only dispatches.
"""

from __future__ import annotations

from app.http.errors import RequestError
from app.http.media import JSON, RESPONSE_TYPES, negotiate, parse_accept

JSONL = "application/jsonl"
EVENT_STREAM = "text/event-stream"
MULTIPART_MIXED = "multipart/mixed"
# In order of preference when the client likes several equally: the draft's required one first.
STREAMED_TYPES = (JSONL, EVENT_STREAM, MULTIPART_MIXED)


def streamed_type(accept: str | None, *, batch: bool) -> str | None:
    """The streamed encoding the client asks for, or None for a JSON answer. A batch (an array,
    or a list of variable sets) streams when the client ranks a streamed type at least as high as
    JSON; a lone operation only when it accepts no JSON type at all (GraphiQL lists
    `multipart/mixed` after the JSON types for every request, and expects JSON back)."""
    ranges = parse_accept(accept)
    if batch:
        floor = max((r.quality for r in ranges if r.media_type in RESPONSE_TYPES), default=0.0)
    elif _json_acceptable(accept):
        return None
    else:
        floor = 0.0
    candidates = [
        (r.quality, -STREAMED_TYPES.index(r.media_type), r.media_type)
        for r in ranges
        if r.media_type in STREAMED_TYPES and r.quality > 0 and r.quality >= floor
    ]
    return max(candidates)[2] if candidates else None


def json_type(accept: str | None) -> str:
    """The JSON type of the answer and of any refusal of the whole request (never streamed).
    Accepting only streamed types is no 406: such refusals are then plain `application/json`."""
    try:
        return negotiate(accept)
    except RequestError:
        if not any(r.media_type in STREAMED_TYPES and r.quality > 0 for r in parse_accept(accept)):
            raise
        return JSON


def _json_acceptable(accept: str | None) -> bool:
    try:
        negotiate(accept)
    except RequestError:
        return False
    return True
