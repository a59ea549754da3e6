"""Keyset cursors: what goes in comes back out, and nothing else decodes."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from app.db.cursors import (
    MAX_CURSOR_LENGTH,
    BakeryKey,
    CursorError,
    OrderKey,
    bakery_cursor,
    decode_bakery,
    decode_order,
    order_cursor,
)
from app.db.models import INT_MAX


def wrap(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("bakery_id", [1, 7, 10, 999, INT_MAX])
def test_a_bakery_cursor_decodes_to_its_id(bakery_id):
    cursor = bakery_cursor(bakery_id)
    assert decode_bakery(cursor) == BakeryKey(bakery_id)
    assert cursor.isascii() and "=" not in cursor and "+" not in cursor and "/" not in cursor


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 11, 30, 9, 20, 1, 123456, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 6, 1, 12, tzinfo=UTC).astimezone(UTC) + timedelta(microseconds=1),
    ],
)
def test_an_order_cursor_keeps_its_time_to_the_microsecond(moment):
    assert decode_order(order_cursor(moment, 42)) == OrderKey(moment, 42)


def test_an_order_cursor_of_another_timezone_names_the_same_instant():
    moment = datetime(2026, 3, 1, 12, tzinfo=UTC)
    elsewhere = moment.astimezone(datetime.now().astimezone().tzinfo)
    assert decode_order(order_cursor(elsewhere, 3)).created_at == moment


@pytest.mark.parametrize(
    ("cursor", "reason"),
    [
        ("", "not a cursor"),
        ("x", "does not decode"),
        ("not base64!", "URL-safe base64"),
        (wrap("v1:bakery:0"), "not a cursor"),
        (wrap("v1:bakery:007"), "not a cursor"),
        (wrap("v1:bakery:-3"), "not a cursor"),
        (wrap(f"v1:bakery:{INT_MAX + 1}"), "out of range"),
        (wrap("v2:bakery:1"), "not a cursor"),
        (wrap("v1:bakery:1 "), "not a cursor"),
        (wrap("v1:order:0:1"), "a cursor of cake orders, not of bakeries"),
        ("A" * (MAX_CURSOR_LENGTH + 1), "longer than any cursor"),
        (base64.urlsafe_b64encode(b"\xff\xfe").decode().rstrip("="), "does not decode"),
    ],
)
def test_anything_but_a_bakery_cursor_is_refused_with_a_reason(cursor, reason):
    with pytest.raises(CursorError, match=reason):
        decode_bakery(cursor)


@pytest.mark.parametrize(
    ("cursor", "reason"),
    [
        (wrap("v1:bakery:1"), "a cursor of bakeries, not of cake orders"),
        (wrap("v1:order:1"), "not a cursor"),
        (wrap("v1:order:x:1"), "not a cursor"),
        (wrap("v1:order:999999999999999999:1"), "out of range"),
        (wrap("v1:order:0:0"), "not a cursor"),
    ],
)
def test_anything_but_an_order_cursor_is_refused_with_a_reason(cursor, reason):
    with pytest.raises(CursorError, match=reason):
        decode_order(cursor)
