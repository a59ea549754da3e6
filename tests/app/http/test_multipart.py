"""The GraphQL multipart request spec: every rule, every malformed case with its status code and
message, the bytes of each file, and the spool left empty whatever happened."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.app.http import forms
from tests.app.http.forms import UPLOAD, body, field, file, headers, upload_operation
from tests.helpers import without_cost
from tests.images import png

# Bigger than the spool threshold the tests set (64 KiB), so it goes through a temporary file.
BIG = png(os.urandom(300_000))
SPOOL_BYTES = 64 * 1024


def spool_root(client) -> Path:
    return client.app.state.settings.resolved_upload_spool_dir


def leftovers(client) -> list[Path]:
    root = spool_root(client)
    return sorted(root.rglob("*")) if root.exists() else []


async def photo_count(engine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM photos"))).scalar_one())


async def post(client, content: bytes, **header_changes):
    return await client.post("/graphql", content=content, headers=headers(**header_changes))


def only_error(response) -> dict:
    payload = response.json()
    assert set(payload) == {"errors"}, payload
    [error] = payload["errors"]
    return error


# ---- what works ----


async def test_a_single_upload_stores_the_photo(client, engine):
    content = b"\xff\xd8\xff small jpeg"
    response = await post(
        client,
        body(
            field("operations", upload_operation("3")),
            field("map", {"0": ["variables.file"]}),
            file("0", content, "birthday cake.jpg", "image/jpeg"),
        ),
    )
    assert response.status_code == 200
    photo = response.json()["data"]["uploadOrderPhoto"]
    assert photo["filename"] == "birthday cake.jpg"
    assert photo["contentType"] == "image/jpeg"
    assert photo["size"] == len(content)
    assert photo["sha256"] == hashlib.sha256(content).hexdigest()
    fetched = await client.get(photo["url"])
    assert fetched.content == content
    order = await client.post("/graphql", json={"query": '{ cakeOrder(id: "3") { photo { id } } }'})
    assert order.json()["data"]["cakeOrder"]["photo"]["id"] == photo["id"]
    # Small files never touch the disk.
    assert not spool_root(client).exists()


async def test_a_file_bigger_than_the_spool_threshold_round_trips_and_leaves_nothing(
    app_client, engine
):
    async with app_client(upload_spool_bytes=SPOOL_BYTES) as client:
        response = await post(
            client,
            body(
                field("operations", upload_operation("2")),
                field("map", {"0": ["variables.file"]}),
                file("0", BIG, "big.bin", "application/octet-stream"),
            ),
        )
        photo = response.json()["data"]["uploadOrderPhoto"]
        fetched = await client.get(photo["url"])
        # The spool directory was made (the file went to disk) and is empty again.
        assert spool_root(client).is_dir()
        assert leftovers(client) == []
    assert photo["size"] == len(BIG)
    assert photo["sha256"] == hashlib.sha256(BIG).hexdigest()
    assert hashlib.sha256(fetched.content).hexdigest() == hashlib.sha256(BIG).hexdigest()


async def test_a_batch_uploads_several_photos_to_several_orders(app_client, engine):
    files = {str(i): png(os.urandom(1000 * (i + 1))) for i in range(3)}
    operations = [upload_operation(str(i + 1)) for i in range(3)]
    operations.append({"query": '{ cakeOrder(id: "1") { id } }'})
    async with app_client(upload_spool_bytes=1500) as client:
        response = await post(
            client,
            body(
                field("operations", operations),
                field("map", {str(i): [f"{i}.variables.file"] for i in range(3)}),
                *(
                    file(name, content, f"cake-{name}.png", "image/png")
                    for name, content in files.items()
                ),
            ),
        )
        assert leftovers(client) == []
    results = response.json()
    assert response.status_code == 200
    assert len(results) == 4
    for i in range(3):
        photo = results[i]["data"]["uploadOrderPhoto"]
        assert photo["sha256"] == hashlib.sha256(files[str(i)]).hexdigest()
        assert photo["filename"] == f"cake-{i}.png"
    assert without_cost(results[3]) == {"data": {"cakeOrder": {"id": "1"}}}
    async with engine.connect() as conn:
        rows = (
            await conn.execute(text("SELECT order_id, sha256 FROM photos ORDER BY order_id"))
        ).all()
    assert [(row.order_id, row.sha256) for row in rows] == [
        (i + 1, hashlib.sha256(files[str(i)]).hexdigest()) for i in range(3)
    ]


@pytest.mark.parametrize("spool_bytes", [1024 * 1024, 1024])
async def test_one_file_mapped_to_several_operations_is_read_whole_by_each(app_client, spool_bytes):
    content = png(os.urandom(5000 - len(png())))
    async with app_client(upload_spool_bytes=spool_bytes) as client:
        response = await post(
            client,
            body(
                field("operations", [upload_operation("4"), upload_operation("5")]),
                field("map", {"photo": ["0.variables.file", "1.variables.file"]}),
                file("photo", content),
            ),
        )
    digest = hashlib.sha256(content).hexdigest()
    photos = [element["data"]["uploadOrderPhoto"] for element in response.json()]
    assert [(p["sha256"], p["size"]) for p in photos] == [(digest, 5000)] * 2
    assert photos[0]["id"] != photos[1]["id"]


async def test_unmapped_extra_files_are_ignored(client, engine):
    response = await post(
        client,
        body(
            field("operations", upload_operation("1")),
            field("map", {"0": ["variables.file"]}),
            file("extra", b"never read", "x.txt", "text/plain"),
            file("0", png(b"the photo")),
            file("another", b"also ignored"),
        ),
    )
    assert response.json()["data"]["uploadOrderPhoto"]["size"] == len(png(b"the photo"))
    assert await photo_count(engine) == 1


async def test_csrf_check_can_be_turned_off(app_client):
    async with app_client(csrf_required=False) as client:
        response = await post(
            client,
            body(
                field("operations", {"query": "{ products { id } }"}),
                field("map", {}),
            ),
            preflight=False,
        )
    assert response.status_code == 200
    assert len(response.json()["data"]["products"]) == 4


@pytest.mark.parametrize(
    "header", ["Apollo-Require-Preflight", "X-Apollo-Operation-Name", "GraphQL-Preflight"]
)
async def test_any_of_the_preflight_headers_is_enough(client, header):
    response = await client.post(
        "/graphql",
        content=body(field("operations", {"query": "{ products { id } }"}), field("map", {})),
        headers={**headers(preflight=False), header: "true"},
    )
    assert response.status_code == 200


async def test_a_failed_resolver_stores_nothing_and_leaves_nothing(app_client, engine):
    async with app_client(upload_spool_bytes=SPOOL_BYTES) as client:
        response = await post(
            client,
            body(
                field("operations", upload_operation("999999")),
                field("map", {"0": ["variables.file"]}),
                file("0", BIG),
            ),
        )
        assert leftovers(client) == []
        photos_dir = client.app.state.settings.photos_dir
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert await photo_count(engine) == 0
    assert not photos_dir.exists() or not any(p.is_file() for p in photos_dir.rglob("*"))


# ---- malformed requests: exact status, a message, never a 500 ----

OPS = field("operations", upload_operation())
MAP = field("map", {"0": ["variables.file"]})
FILE = file("0", png(b"bytes"))

MALFORMED = [
    pytest.param(
        body(MAP, OPS, FILE),
        400,
        "The first part of a multipart request must be `operations`, not `map`",
        id="operations-not-first",
    ),
    pytest.param(
        body(FILE, OPS, MAP),
        400,
        "The first part of a multipart request must be `operations`, not `0`",
        id="file-first",
    ),
    pytest.param(
        body(OPS, FILE, MAP),
        400,
        "The second part of a multipart request must be `map`, not `0`",
        id="map-not-second",
    ),
    pytest.param(
        body(field("operations", "{not json"), MAP, FILE),
        400,
        "The `operations` part is not valid JSON",
        id="operations-invalid-json",
    ),
    pytest.param(
        body(field("operations", "42"), MAP, FILE),
        400,
        "The request is a number",
        id="operations-not-object",
    ),
    pytest.param(
        body(field("operations", []), MAP, FILE),
        400,
        "The batch is an empty array",
        id="operations-empty-array",
    ),
    pytest.param(
        body(field("operations", [upload_operation(), "x"]), MAP, FILE),
        400,
        "Element 1 of the batch is a string, not an object",
        id="operations-element-not-object",
    ),
    pytest.param(
        body(OPS, field("map", "{nope"), FILE),
        400,
        "The `map` part is not valid JSON",
        id="map-invalid-json",
    ),
    pytest.param(
        body(OPS, field("map", [["variables.file"]]), FILE),
        400,
        "`map` must be a JSON object",
        id="map-not-object",
    ),
    pytest.param(
        body(OPS, field("map", {"0": "variables.file"}), FILE),
        400,
        '`map["0"]` must be a non-empty array of path strings',
        id="map-value-not-array",
    ),
    pytest.param(
        body(OPS, field("map", {"0": []}), FILE),
        400,
        '`map["0"]` must be a non-empty array of path strings',
        id="map-value-empty",
    ),
    pytest.param(
        body(OPS, field("map", {"0": [3]}), FILE),
        400,
        '`map["0"]` must be a non-empty array of path strings',
        id="map-path-not-string",
    ),
    pytest.param(
        body(OPS, field("map", {"0": ["variables.photo"]}), FILE),
        400,
        '`map["0"]` path `variables.photo` does not point at a null in `operations`: '
        "`variables` has no `photo`",
        id="path-to-nowhere",
    ),
    pytest.param(
        body(OPS, field("map", {"0": ["0.variables.file"]}), FILE),
        400,
        "`operations` has no `0`",
        id="batch-path-on-single-operation",
    ),
    pytest.param(
        body(
            field("operations", [upload_operation()]),
            field("map", {"0": ["1.variables.file"]}),
            FILE,
        ),
        400,
        "`operations` is an array of 1, `1` is not an index",
        id="batch-index-out-of-range",
    ),
    pytest.param(
        body(OPS, field("map", {"0": ["variables.orderId"]}), FILE),
        400,
        "it holds a string, not null: put null where the file goes",
        id="path-not-null",
    ),
    pytest.param(
        body(OPS, field("map", {"0": ["variables.file.name"]}), FILE),
        400,
        "`variables.file` is null, it has no `name`",
        id="path-through-null",
    ),
    pytest.param(
        body(OPS, field("map", {"0": ["variables.file"], "1": ["variables.file"]}), FILE),
        400,
        "The path `variables.file` is mapped twice in `map` (to `0` and `1`)",
        id="path-mapped-twice",
    ),
    pytest.param(
        body(OPS, MAP),
        400,
        "The file part(s) `0` named in `map` did not arrive",
        id="missing-file",
    ),
    pytest.param(
        body(OPS, MAP, FILE, FILE),
        400,
        "The file part `0` arrives twice",
        id="file-twice",
    ),
    pytest.param(
        body(OPS),
        400,
        "The multipart request has no `map` part",
        id="no-map",
    ),
    pytest.param(
        body(),
        400,
        "The multipart request has no `operations` part",
        id="no-parts",
    ),
    pytest.param(
        body(OPS, MAP, FILE, field("operations", upload_operation())),
        400,
        "The multipart request has a second `operations` part",
        id="second-operations",
    ),
    pytest.param(
        body(OPS, MAP, FILE, closed=False),
        400,
        "The multipart body ended before its closing boundary",
        id="truncated",
    ),
    pytest.param(
        b"this is not multipart at all",
        400,
        "The multipart body is malformed",
        id="garbage",
    ),
]


@pytest.mark.parametrize(("content", "status", "message"), MALFORMED)
async def test_malformed_multipart_requests(client, engine, content, status, message):
    response = await post(client, content)
    assert response.status_code == status, response.text
    error = only_error(response)
    assert message in error["message"], error["message"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert await photo_count(engine) == 0
    assert leftovers(client) == []


async def test_missing_csrf_header_is_400_naming_the_headers(client, engine):
    response = await post(client, body(OPS, MAP, FILE), preflight=False)
    assert response.status_code == 400
    error = only_error(response)
    for name in ("Apollo-Require-Preflight", "X-Apollo-Operation-Name", "GraphQL-Preflight"):
        assert name in error["message"]
    assert error["extensions"]["code"] == "CSRF_PREFLIGHT_REQUIRED"
    assert await photo_count(engine) == 0


async def test_an_empty_preflight_header_does_not_count(client):
    response = await client.post(
        "/graphql",
        content=body(OPS, MAP, FILE),
        headers={**headers(preflight=False), "GraphQL-Preflight": " "},
    )
    assert response.status_code == 400


async def test_a_multipart_content_type_without_boundary_is_400(client):
    response = await client.post(
        "/graphql",
        content=body(OPS, MAP, FILE),
        headers={"Content-Type": "multipart/form-data", **forms.PREFLIGHT},
    )
    assert response.status_code == 400
    assert "boundary" in only_error(response)["message"]


# ---- limits ----


async def test_too_many_files_is_413_naming_the_limit(app_client, engine):
    operations = [upload_operation(str(i)) for i in range(1, 4)]
    async with app_client(max_files=2) as client:
        response = await post(
            client,
            body(
                field("operations", operations),
                field("map", {str(i): [f"{i}.variables.file"] for i in range(3)}),
                *(file(str(i), b"x") for i in range(3)),
            ),
        )
    assert response.status_code == 413
    error = only_error(response)
    assert error["message"] == (
        "`map` names 3 files, too many for one request (limit: 2, set by BATCHERY_MAX_FILES)"
    )
    assert error["extensions"] == {
        "code": "TOO_MANY_FILES",
        "limit": 2,
        "setting": "BATCHERY_MAX_FILES",
    }
    assert await photo_count(engine) == 0


async def test_a_file_too_large_is_413_and_its_partial_copy_is_removed(app_client, engine):
    async with app_client(max_file_bytes=100_000, upload_spool_bytes=SPOOL_BYTES) as client:
        response = await post(client, body(OPS, MAP, file("0", BIG, "huge.jpg")))
        assert spool_root(client).is_dir()
        assert leftovers(client) == []
    assert response.status_code == 413
    error = only_error(response)
    assert error["message"] == (
        "The file `0` (huge.jpg) is too large (limit: 100000 bytes, set by BATCHERY_MAX_FILE_BYTES)"
    )
    assert error["extensions"] == {
        "code": "FILE_TOO_LARGE",
        "limit": 100_000,
        "setting": "BATCHERY_MAX_FILE_BYTES",
    }
    assert await photo_count(engine) == 0


async def test_a_failure_after_a_big_file_was_spooled_removes_it(app_client, engine):
    """The first file is on disk when the request fails (the second never arrives)."""
    async with app_client(upload_spool_bytes=SPOOL_BYTES) as client:
        response = await post(
            client,
            body(
                field("operations", [upload_operation("1"), upload_operation("2")]),
                field("map", {"0": ["0.variables.file"], "1": ["1.variables.file"]}),
                file("0", BIG),
            ),
        )
        assert spool_root(client).is_dir()
        assert leftovers(client) == []
    assert response.status_code == 400
    assert "`1`" in only_error(response)["message"]
    assert await photo_count(engine) == 0


@pytest.mark.parametrize("part", ["operations", "map"])
async def test_operations_or_map_too_large_is_413(app_client, part):
    padding = {"query": "{ products { id } }", "variables": {"pad": "x" * 2000}}
    parts = {
        "operations": (field("operations", padding), field("map", {})),
        "map": (
            field("operations", {"query": "{ products { id } }"}),
            field("map", {f"f{i}": ["variables.x"] for i in range(200)}),
        ),
    }[part]
    async with app_client(max_operations_bytes=1000) as client:
        response = await post(client, body(*parts))
    assert response.status_code == 413
    error = only_error(response)
    assert f"The `{part}` part is too large" in error["message"]
    assert error["extensions"]["code"] == "OPERATIONS_TOO_LARGE"
    assert error["extensions"]["setting"] == "BATCHERY_MAX_OPERATIONS_BYTES"


async def test_a_body_over_the_limit_is_413(app_client, engine):
    async with app_client(max_body_bytes=50_000, upload_spool_bytes=1024) as client:
        content = body(OPS, MAP, file("0", BIG))
        declared = await post(client, content)

        async def chunks():
            # No Content-Length: the limit must hold while streaming too.
            for start in range(0, len(content), 8192):
                yield content[start : start + 8192]

        streamed = await client.post("/graphql", content=chunks(), headers=headers())
        assert leftovers(client) == []
    for response in (declared, streamed):
        assert response.status_code == 413
        error = only_error(response)
        assert "The request body is too large" in error["message"]
        assert error["extensions"] == {
            "code": "BODY_TOO_LARGE",
            "limit": 50_000,
            "setting": "BATCHERY_MAX_BODY_BYTES",
        }
    assert await photo_count(engine) == 0


async def test_the_batch_limit_applies_to_multipart_batches(app_client):
    async with app_client(max_batch_operations=2) as client:
        response = await post(
            client,
            body(field("operations", [{"query": "{ products { id } }"}] * 3), field("map", {})),
        )
    assert response.status_code == 413
    assert only_error(response)["extensions"]["code"] == "TOO_MANY_OPERATIONS"


async def test_upload_query_text_is_the_documented_one():
    assert "uploadOrderPhoto(orderId: $orderId, file: $file)" in UPLOAD
