"""Media types: what a request is (Content-Type) and what its response will be (Accept)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response

from app.http.errors import RequestError

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
MULTIPART = "multipart/form-data"
HTML = "text/html"
ACCEPTED_REQUEST_TYPES = (JSON, MULTIPART)
# In order of preference when the client likes several equally.
RESPONSE_TYPES = (GRAPHQL_RESPONSE_JSON, JSON)
WILDCARDS = {"*/*": JSON, "application/*": JSON}


@dataclass(frozen=True, slots=True)
class MediaRange:
    media_type: str
    quality: float


# Clients send the same few Accept headers again and again, and every request reads its header
# up to four times (SSE, streaming, negotiation, GraphiQL): short ones are parsed once per
# process. The bound keeps a client inventing headers from growing the cache past ~64 KB.
CACHED_ACCEPT_CHARS = 256


def parse_accept(header: str | None) -> tuple[MediaRange, ...]:
    if header is not None and len(header) <= CACHED_ACCEPT_CHARS:
        return _parse_accept_cached(header)
    return _parse_accept(header)


@functools.lru_cache(maxsize=256)
def _parse_accept_cached(header: str) -> tuple[MediaRange, ...]:
    return _parse_accept(header)


def _parse_accept(header: str | None) -> tuple[MediaRange, ...]:
    ranges = []
    for item in (header or "").split(","):
        media_type, *params = (part.strip() for part in item.split(";"))
        if not media_type:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges.append(MediaRange(media_type.lower(), quality))
    return tuple(ranges)


def negotiate(accept: str | None) -> str:
    """The response media type for a request's `Accept` header.

    No `Accept` (or an empty one) means `application/json`, as the GraphQL-over-HTTP spec asks
    of servers for legacy clients; wildcards get `application/json` too. A header that accepts
    neither JSON type is refused with 406.
    """
    ranges = parse_accept(accept)
    if not ranges:
        return JSON
    candidates: list[tuple[tuple[float, bool, int], str]] = []
    for media_range in ranges:
        chosen = WILDCARDS.get(media_range.media_type, media_range.media_type)
        if media_range.quality > 0 and chosen in RESPONSE_TYPES:
            # Higher quality wins; on a tie an explicit type beats a wildcard, then our order.
            explicit = media_range.media_type in RESPONSE_TYPES
            candidates.append(
                ((media_range.quality, explicit, -RESPONSE_TYPES.index(chosen)), chosen)
            )
    if not candidates:
        raise RequestError(
            406,
            f"None of the media types in Accept ({accept}) can be served: accept "
            f"{GRAPHQL_RESPONSE_JSON} or {JSON}.",
            "NOT_ACCEPTABLE",
        )
    return max(candidates)[1]


def prefers_html(accept: str | None) -> bool:
    """True when a browser asks for a page (text/html ranked above any JSON type)."""
    html = max((r.quality for r in parse_accept(accept) if r.media_type == HTML), default=0.0)
    json = max(
        (r.quality for r in parse_accept(accept) if r.media_type in RESPONSE_TYPES), default=0.0
    )
    return html > 0 and html >= json


def content_type(header: str | None) -> tuple[str, dict[str, str]]:
    """The media type of a Content-Type header, lower-cased, and its parameters."""
    media_type, *params = (part.strip() for part in (header or "").split(";"))
    parameters = {}
    for param in params:
        name, _, value = param.partition("=")
        parameters[name.strip().lower()] = value.strip().strip('"')
    return media_type.lower(), parameters


def render(
    payload: Any, media_type: str, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(payload),
        status,
        headers=headers,
        media_type=f"{media_type}; charset=utf-8",
    )
