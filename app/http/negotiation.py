"""What `/graphql` reads of a request's headers, read once per request: the four headers it looks
at, and every decision its `Accept` header makes, cached per header value.

Starlette's `Headers` looks each header up in a pass of its own, and the endpoint asked about
`Accept` five times per request (SSE, JSON type, streaming, negotiation twice): for
`{ __typename }` that was a tenth of the CPU of the request (docs/performance.md, issue 12 round
three). The decisions themselves are app/http/media.py's, app/http/sse.py's and
app/http/stream_media.py's, unchanged.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from starlette.types import Scope

from app.http.errors import RequestError
from app.http.media import CACHED_ACCEPT_CHARS, JSON, negotiate
from app.http.sse import wants_event_stream
from app.http.stream_media import json_type, streamed_type


class RequestHeaders:
    """The headers `/graphql` reads, found in one pass over the scope's. The first of a
    repeated header counts (as with Starlette's `Headers.get`)."""

    __slots__ = ("accept", "content_length", "content_type", "cost")

    def __init__(self, scope: Scope) -> None:
        # Reversed: of a repeated name, the first one is the one kept.
        found: dict[bytes, bytes] = dict(reversed(scope["headers"]))
        self.accept = _text(found.get(b"accept"))
        self.content_type = _text(found.get(b"content-type"))
        self.content_length = _text(found.get(b"content-length"))
        self.cost = _text(found.get(b"graphql-cost"))


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What an `Accept` header asks of `/graphql`."""

    accept: str | None
    # A text/event-stream request (app/http/sse.py).
    event_stream: bool
    # The JSON type of the answer (app/http/stream_media.py's `json_type`); None when that
    # refuses the header (406), which `json_type()` then raises afresh.
    json: str | None
    # The streamed encoding of a lone operation's answer and of a batch's (None: JSON).
    lone_stream: str | None
    batch_stream: str | None
    # The media type of a refusal of the whole request.
    error_type: str

    def json_type(self) -> str:
        if self.json is None:
            return json_type(self.accept)  # raises the 406
        return self.json

    def streamed_type(self, *, batch: bool) -> str | None:
        return self.batch_stream if batch else self.lone_stream


def negotiated(accept: str | None) -> Negotiated:
    # Bounded like `parse_accept`'s cache: a client inventing headers cannot grow it much.
    if accept is None or len(accept) <= CACHED_ACCEPT_CHARS:
        return _negotiated_cached(accept)
    return _negotiate(accept)


@functools.lru_cache(maxsize=256)
def _negotiated_cached(accept: str | None) -> Negotiated:
    return _negotiate(accept)


def _negotiate(accept: str | None) -> Negotiated:
    try:
        json: str | None = json_type(accept)
    except RequestError:
        json = None
    try:
        error_type = negotiate(accept)
    except RequestError:
        error_type = JSON
    return Negotiated(
        accept,
        wants_event_stream(accept),
        json,
        streamed_type(accept, batch=False),
        streamed_type(accept, batch=True),
        error_type,
    )
