"""The photo store: content-addressed bytes, sanitized names, images recognised from their bytes."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text

from app.db.image_types import image_type
from app.db.photos import NotAnImage, PhotoStore, sanitize_filename, store_photo
from app.uploads import UploadedFile
from tests.images import GIF, JPEG, PNG, WEBP, png


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
    ("head", "expected"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (GIF, "image/gif"),
        (b"GIF87a" + GIF[6:], "image/gif"),
        (WEBP, "image/webp"),
        (b"hello, this is text", None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),  # RIFF, but audio
        (PNG[:7], None),  # a signature cut short
        (b"", None),
    ],
)
def test_image_type_is_read_from_the_magic_number(head, expected):
    assert image_type(head) == expected


async def test_the_same_bytes_are_stored_once(tmp_path):
    store = PhotoStore(tmp_path / "photos")
    first = await store.put(upload(png(b"same bytes")))
    second = await store.put(upload(png(b"same bytes"), "other.jpg"))
    assert first == second
    assert first.sha256 == hashlib.sha256(png(b"same bytes")).hexdigest()
    stored = [p for p in (tmp_path / "photos").rglob("*") if p.is_file()]
    assert stored == [store.path_of(first.sha256)]
    assert stored[0].read_bytes() == png(b"same bytes")


async def test_bytes_larger_than_a_copy_chunk_are_stored_whole(tmp_path):
    content = png(bytes(range(256)) * 9000)  # more than 2 MiB: several chunks
    stored = await PhotoStore(tmp_path).put(upload(content))
    assert PhotoStore(tmp_path).path_of(stored.sha256).read_bytes() == content
    assert stored.size == len(content)


async def test_what_is_not_an_image_is_refused_and_nothing_is_kept(tmp_path):
    store = PhotoStore(tmp_path / "photos")
    with pytest.raises(NotAnImage, match=r"must be a PNG, JPEG, WebP or GIF image.*'notes\.png'"):
        await store.put(upload(b"just some text", "notes.png", "image/png"))
    assert [p for p in (tmp_path / "photos").rglob("*") if p.is_file()] == []


def test_path_of_refuses_what_is_not_a_digest(tmp_path):
    with pytest.raises(ValueError):
        PhotoStore(tmp_path).path_of("../../etc/passwd")


async def test_store_photo_records_the_row(engine, tmp_path):
    store = PhotoStore(tmp_path / "photos")
    row = await store_photo(engine, store, 2, upload(png(b"..."), "../x.png", "image/png"))
    assert row is not None
    assert (row.order_id, row.filename, row.content_type, row.size) == (2, "x.png", "image/png", 19)
    assert store.path_of(row.sha256).read_bytes() == png(b"...")


async def test_the_recorded_type_is_the_detected_one_not_the_claim(engine, tmp_path):
    store = PhotoStore(tmp_path / "photos")
    row = await store_photo(engine, store, 2, upload(GIF, "cake.png", "image/png"))
    assert row is not None and row.content_type == "image/gif"


async def test_store_photo_for_a_missing_order_writes_nothing(engine, tmp_path):
    store = PhotoStore(tmp_path / "photos")
    assert await store_photo(engine, store, 424242, upload(png())) is None
    assert not (tmp_path / "photos").exists()
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM photos"))).scalar_one() == 0
