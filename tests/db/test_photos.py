"""The photo store: content-addressed bytes, sanitized names, recorded media types."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text

from app.db.photos import PhotoStore, media_type_of, sanitize_filename, store_photo
from app.uploads import UploadedFile


def upload(content: bytes, filename: str | None = "cake.jpg", content_type: str = "image/jpeg"):
    return UploadedFile("0", filename, content_type, len(content), data=content)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cake.jpg", "cake.jpg"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\cake.png", "cake.png"),
        ("  .hidden ", "hidden"),
        ("a\x00b\nc.txt", "abc.txt"),
        ("<script>.html", "_script_.html"),
        ("gâteau d'anniversaire.jpg", "gâteau d_anniversaire.jpg"),
        ("", "upload"),
        (None, "upload"),
        ("..", "upload"),
        ("x" * 300 + ".jpeg", "x" * 250 + ".jpeg"),
        ("y" * 300, "y" * 255),
    ],
)
def test_sanitize_filename(name, expected):
    assert sanitize_filename(name) == expected


@pytest.mark.parametrize(
    ("declared", "filename", "expected"),
    [
        ("image/png", "x.jpg", "image/png"),
        ("IMAGE/JPEG; charset=binary", "x", "image/jpeg"),
        ("application/octet-stream", "cake.png", "image/png"),
        ("not a type", "cake.gif", "image/gif"),
        ("", "notes", "application/octet-stream"),
    ],
)
def test_media_type_of(declared, filename, expected):
    assert media_type_of(declared, filename) == expected


async def test_the_same_bytes_are_stored_once(tmp_path):
    store = PhotoStore(tmp_path / "photos")
    first = await store.put(upload(b"same bytes"))
    second = await store.put(upload(b"same bytes", "other.jpg"))
    assert first == second
    assert first.sha256 == hashlib.sha256(b"same bytes").hexdigest()
    stored = [p for p in (tmp_path / "photos").rglob("*") if p.is_file()]
    assert stored == [store.path_of(first.sha256)]
    assert stored[0].read_bytes() == b"same bytes"


def test_path_of_refuses_what_is_not_a_digest(tmp_path):
    with pytest.raises(ValueError):
        PhotoStore(tmp_path).path_of("../../etc/passwd")


async def test_store_photo_records_the_row(engine, tmp_path):
    store = PhotoStore(tmp_path / "photos")
    row = await store_photo(engine, store, 2, upload(b"\x89PNG...", "../x.png", "image/png"))
    assert row is not None
    assert (row.order_id, row.filename, row.content_type, row.size) == (2, "x.png", "image/png", 7)
    assert store.path_of(row.sha256).read_bytes() == b"\x89PNG..."


async def test_store_photo_for_a_missing_order_writes_nothing(engine, tmp_path):
    store = PhotoStore(tmp_path / "photos")
    assert await store_photo(engine, store, 424242, upload(b"bytes")) is None
    assert not (tmp_path / "photos").exists()
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM photos"))).scalar_one() == 0
