"""`GET /photos/{id}`: the stored bytes with their type, served so a browser cannot run them."""

from __future__ import annotations

import hashlib

import pytest

from tests.app.http.forms import body, field, file, headers, upload_operation


async def upload(client, content: bytes, filename: str, content_type: str) -> dict:
    response = await client.post(
        "/graphql",
        content=body(
            field("operations", upload_operation("1")),
            field("map", {"0": ["variables.file"]}),
            file("0", content, filename, content_type),
        ),
        headers=headers(),
    )
    return response.json()["data"]["uploadOrderPhoto"]


async def test_an_image_is_served_inline_with_its_type(client):
    photo = await upload(client, b"\x89PNG\r\n\x1a\n...", "cake.png", "image/png")
    response = await client.get(photo["url"])
    assert response.status_code == 200
    assert response.content == b"\x89PNG\r\n\x1a\n..."
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"] == 'inline; filename="cake.png"'
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
    assert response.headers["etag"] == f'"{hashlib.sha256(response.content).hexdigest()}"'


@pytest.mark.parametrize(
    ("filename", "content_type"), [("page.html", "text/html"), ("logo.svg", "image/svg+xml")]
)
async def test_other_types_are_downloaded_not_displayed(client, filename, content_type):
    photo = await upload(client, b"<script>alert(1)</script>", filename, content_type)
    assert photo["contentType"] == content_type  # recorded as declared
    response = await client.get(photo["url"])
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith("attachment;")


async def test_an_unknown_photo_is_404(client):
    response = await client.get("/photos/424242")
    assert response.status_code == 404
    assert response.json()["errors"][0]["message"] == "There is no photo with id 424242."


async def test_a_photo_whose_bytes_are_gone_is_404(client):
    photo = await upload(client, b"bytes", "a.jpg", "image/jpeg")
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
