"""When a `/graphql` answer is streamed, and how: from `Accept`, with wildcards keeping JSON,
ties going to the draft's required `application/jsonl`, and a lone operation streamed only when
the client takes no JSON at all."""

from __future__ import annotations

import pytest

from app.http.errors import RequestError
from app.http.stream_media import json_type, streamed_type


@pytest.mark.parametrize(
    ("accept", "batch", "expected"),
    [
        (None, True, None),
        ("*/*", True, None),
        ("application/json", True, None),
        ("application/jsonl", True, "application/jsonl"),
        ("application/json, application/jsonl", True, "application/jsonl"),
        ("application/json, application/jsonl;q=0.5", True, None),
        ("text/event-stream, multipart/mixed, application/jsonl", True, "application/jsonl"),
        ("multipart/mixed, text/event-stream;q=0.9", True, "multipart/mixed"),
        ("application/jsonl;q=0", True, None),
        # A lone operation: only when no JSON type is acceptable.
        ("application/json, application/jsonl", False, None),
        ("application/graphql-response+json, application/json, multipart/mixed", False, None),
        ("application/jsonl", False, "application/jsonl"),
        ("*/*, application/jsonl", False, None),
    ],
)
def test_the_streamed_type_chosen(accept, batch, expected):
    assert streamed_type(accept, batch=batch) == expected


def test_accepting_only_streamed_types_is_no_406_for_the_json_of_refusals():
    assert json_type("application/jsonl") == "application/json"
    assert json_type("application/graphql-response+json") == "application/graphql-response+json"
    with pytest.raises(RequestError) as refused:
        json_type("text/plain")
    assert refused.value.status == 406
