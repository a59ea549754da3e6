"""`uploadOrderPhoto` keeps images only; `GET /photos/{id}` serves the stored bytes with their
detected type, so that a browser cannot run them."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import insert, select

from app.db.photos import PhotoStore, photos
from tests.app.http.forms import body, field, file, headers, upload_operation
from tests.images import EXAMPLE_PNG, GIF, JPEG, WEBP, png


async def post_upload(client, content: bytes, filename: str, content_type: str) -> dict:
    response = await client.post(
        "/graphql",
        content=body(
            field("operations", upload_operation("1")),
            field("map", {"0": ["variables.file"]}),
            file("0", content, filename, content_type),
        ),
        headers=headers(),
    )
    assert response.status_code == 200
    return response.json()


async def upload(client, content: bytes, filename: str, content_type: str) -> dict:
    return (await post_upload(client, content, filename, content_type))["data"]["uploadOrderPhoto"]


async def test_an_image_is_served_inline_with_its_type(client):
    content = EXAMPLE_PNG.read_bytes()
    photo = await upload(client, content, "cake.png", "image/png")
    response = await client.get(photo["url"])
    assert response.status_code == 200
    assert response.content == content
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"] == 'inline; filename="cake.png"'
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
    assert response.headers["etag"] == f'"{hashlib.sha256(response.content).hexdigest()}"'


@pytest.mark.parametrize(
    ("content", "claimed", "detected"),
    [
        (png(b"..."), "image/jpeg", "image/png"),
        (JPEG, "application/octet-stream", "image/jpeg"),
        (GIF, "image/png", "image/gif"),
        (WEBP, "text/plain", "image/webp"),
    ],
)
async def test_the_type_recorded_and_served_is_the_detected_one(client, content, claimed, detected):
    photo = await upload(client, content, "upload.png", claimed)
    assert photo["contentType"] == detected
    response = await client.get(photo["url"])
    assert response.headers["content-type"] == detected


@pytest.mark.parametrize(
    ("content", "filename", "claimed"),
    [
        (b"just a text file\n", "notes.txt", "text/plain"),
        (b"just a text file\n", "cake.png", "image/png"),  # a claim the bytes do not back
        (b"<script>alert(1)</script>", "page.html", "text/html"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>", "logo.svg", "image/svg+xml"),
        (b"", "empty.png", "image/png"),
    ],
)
async def test_what_is_not_an_image_is_refused_and_nothing_is_stored(
    client, content, filename, claimed
):
    answer = await post_upload(client, content, filename, claimed)
    assert answer["data"] is None
    (error,) = answer["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "file"}
    assert error["message"] == (
        "file: a photo must be a PNG, JPEG, WebP or GIF image, recognised from its bytes; "
        f"{filename!r} is none of these, whatever its name or declared type say"
    )
    async with client.app.state.engine.connect() as conn:
        assert (await conn.execute(select(photos))).all() == []
    store = client.app.state.settings.photos_dir
    assert not store.exists() or not any(p.is_file() for p in store.rglob("*"))


async def test_a_stored_photo_of_another_type_is_downloaded_not_displayed(client):
    # Photos stored before uploads were checked may have any type: never inline.
    content = b"<script>alert(1)</script>"
    sha256 = hashlib.sha256(content).hexdigest()
    path = PhotoStore(client.app.state.settings.photos_dir).path_of(sha256)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    async with client.app.state.engine.begin() as conn:
        photo_id = (
            await conn.execute(
                insert(photos)
                .values(
                    order_id=1,
                    filename="page.html",
                    content_type="text/html",
                    size=len(content),
                    sha256=sha256,
                )
                .returning(photos.c.id)
            )
        ).scalar_one()
    response = await client.get(f"/photos/{photo_id}")
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith("attachment;")


async def test_an_unknown_photo_is_404(client):
    response = await client.get("/photos/424242")
    assert response.status_code == 404
    assert response.json()["errors"][0]["message"] == "There is no photo with id 424242."


async def test_a_photo_whose_bytes_are_gone_is_404(client):
    photo = await upload(client, JPEG, "a.jpg", "image/jpeg")
    store = client.app.state.settings.photos_dir
    (store / photo["sha256"][:2] / photo["sha256"]).unlink()
    response = await client.get(photo["url"])
    assert response.status_code == 404
    assert "missing" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("photo_id", ["2147483648", "99999999999999999999"])
async def test_an_id_past_the_key_range_is_404(client, photo_id):
    response = await client.get(f"/photos/{photo_id}")
    assert response.status_code == 404
    assert response.json()["errors"][0]["message"] == f"There is no photo with id {photo_id}."
