"""Accept negotiation and Content-Type parsing."""

from __future__ import annotations

import pytest

from app.http.errors import RequestError
from app.http.media import content_type, negotiate, prefers_html

GQL = "application/graphql-response+json"
JSON = "application/json"


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        (f"{GQL}, {JSON}", GQL),
        (f"{JSON}, {GQL}", GQL),
        (f"{GQL};q=0.9, {JSON}", JSON),
        (f"{JSON};q=0.1, */*", JSON),
        (f"*/*;q=0.9, {GQL};q=0.9", GQL),
        (f"{GQL};q=0, */*", JSON),
        (f"{GQL};q=oops, {JSON};q=0.2", JSON),
        ("text/html, application/xhtml+xml, */*;q=0.8", JSON),
    ],
)
def test_negotiate(accept, chosen):
    assert negotiate(accept) == chosen


@pytest.mark.parametrize("accept", ["text/html", "image/png, text/plain;q=0.5", f"{JSON};q=0"])
def test_negotiate_refuses_with_406(accept):
    with pytest.raises(RequestError) as raised:
        negotiate(accept)
    assert raised.value.status == 406


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        ("text/html,application/xhtml+xml,*/*;q=0.8", True),
        ("text/html", True),
        (f"{GQL}, text/html;q=0.5", False),
        ("*/*", False),
        (None, False),
    ],
)
def test_prefers_html(accept, html):
    assert prefers_html(accept) is html


def test_content_type():
    assert content_type('Multipart/Form-Data; boundary="abc"; charset=UTF-8') == (
        "multipart/form-data",
        {"boundary": "abc", "charset": "UTF-8"},
    )
    assert content_type(None) == ("", {})
