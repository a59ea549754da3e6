"""Keyset cursors: where a page ends, as an opaque string a client hands back for the next page.

A cursor names the last row seen by its position in the list's order, never by an offset: the next
page is "the rows after this key" (`WHERE key > :after ORDER BY key LIMIT n`), so rows inserted or
deleted before the cursor while a client pages never shift or repeat what it gets next, and any
page costs one indexed probe however deep it is.

The string is URL-safe base64 (no padding) of `v1:<list>:<key>`:

- `v1:bakery:<id>` - bakeries by id ascending: the order and the key of REST's
  `GET /api/bakeries?after=<id>`, so a bakery cursor decodes to exactly the id REST takes;
- `v1:order:<createdAt in microseconds since the Unix epoch, UTC>:<id>` - a bakery's orders
  newest first (createdAt desc, then id desc), the order of `Bakery.orders`.

The version lets the format change later without misreading old cursors. Clients must treat
cursors as opaque; this module is the only place that knows what is inside.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.db.models import INT_MAX

VERSION = "v1"
# Far above any cursor this module makes (an order's is about 50 characters): anything longer is
# refused before it is decoded.
MAX_CURSOR_LENGTH = 100

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_BAKERY = re.compile(rf"{VERSION}:bakery:([1-9][0-9]{{0,9}})")
_ORDER = re.compile(rf"{VERSION}:order:(-?[0-9]{{1,18}}):([1-9][0-9]{{0,9}})")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


class CursorError(ValueError):
    """A string that is not a cursor of the list it was given to (the message says why)."""


@dataclass(frozen=True, slots=True)
class BakeryKey:
    """A bakery's position in id order."""

    id: int


@dataclass(frozen=True, slots=True)
class OrderKey:
    """An order's position in newest-first order: (createdAt, id), both descending."""

    created_at: datetime
    id: int


def _wrap(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _unwrap(cursor: str) -> str:
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise CursorError(f"longer than any cursor ({len(cursor)} characters)")
    if not _BASE64URL.fullmatch(cursor):
        raise CursorError("not a cursor (cursors are URL-safe base64)")
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CursorError("not a cursor (it does not decode)") from None


def bakery_cursor(bakery_id: int) -> str:
    return _wrap(f"{VERSION}:bakery:{bakery_id}")


def order_cursor(created_at: datetime, order_id: int) -> str:
    micros = (created_at - _EPOCH) // _MICROSECOND
    return _wrap(f"{VERSION}:order:{micros}:{order_id}")


def decode_bakery(cursor: str) -> BakeryKey:
    text = _unwrap(cursor)
    match = _BAKERY.fullmatch(text)
    if match is None:
        raise CursorError(_wrong_list(text, "bakery"))
    return BakeryKey(_checked_id(match.group(1)))


def decode_order(cursor: str) -> OrderKey:
    text = _unwrap(cursor)
    match = _ORDER.fullmatch(text)
    if match is None:
        raise CursorError(_wrong_list(text, "order"))
    try:
        created_at = _EPOCH + int(match.group(1)) * _MICROSECOND
    except OverflowError:
        raise CursorError("not a cursor (its time is out of range)") from None
    return OrderKey(created_at, _checked_id(match.group(2)))


def _checked_id(digits: str) -> int:
    value = int(digits)
    if value > INT_MAX:
        raise CursorError("not a cursor (its id is out of range)")
    return value


_LISTS = {"bakery": "bakeries", "order": "cake orders"}


def _wrong_list(text: str, wanted: str) -> str:
    parts = text.split(":")
    if len(parts) >= 2 and parts[0] == VERSION and parts[1] in _LISTS and parts[1] != wanted:
        return f"a cursor of {_LISTS[parts[1]]}, not of {_LISTS[wanted]}"
    return "not a cursor"
