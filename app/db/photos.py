"""Photos of cake orders: bytes in a content-addressed store on disk, metadata in `photos`.

The bytes live at `<photos_dir>/<sha256[:2]>/<sha256>`: the same content uploaded twice is stored
once, and a file never changes once written (it is moved into place atomically). Only images are
kept (PNG, JPEG, WebP, GIF, recognised from their bytes while they are copied): the row records the
sanitized client filename, the detected content type (never the client's claim), the size and
the digest.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, cast

from sqlalchemy import Row, Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import models
from app.db.image_types import ACCEPTED, HEAD_BYTES, image_type
from app.db.transactions import write_connection

photos = cast(Table, models.Photo.__table__)
orders = cast(Table, models.CakeOrder.__table__)

COPY_CHUNK_BYTES = 1024 * 1024
MAX_FILENAME_LENGTH = 255
DEFAULT_FILENAME = "upload"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_UNSAFE = re.compile(r"[^\w.\- ()+,@=]")


class PhotoSource(Protocol):
    """What the store needs of an uploaded file (`app.uploads.UploadedFile` is one)."""

    @property
    def filename(self) -> str | None: ...

    def open(self) -> BinaryIO: ...


class NotAnImage(ValueError):
    """The bytes are not an image the store keeps; the message says which are."""


@dataclass(frozen=True, slots=True)
class StoredBytes:
    sha256: str
    size: int
    content_type: str


class PhotoStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    async def put(self, upload: PhotoSource) -> StoredBytes:
        """Copy the bytes in; NotAnImage (and nothing stored) when they are not an image."""
        return await asyncio.to_thread(self._put, upload)

    def _put(self, upload: PhotoSource) -> StoredBytes:
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        # Hash and recognise while copying (one pass), into a temporary file beside the store so
        # the final rename is atomic: a reader never sees a half-written photo.
        fd, incoming = tempfile.mkstemp(prefix=".incoming-", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as target, upload.open() as source:
                head = source.read(HEAD_BYTES)
                media_type = image_type(head)
                if media_type is None:
                    name = upload.filename or "the file"
                    raise NotAnImage(
                        f"a photo must be a {ACCEPTED} image, recognised from its bytes; "
                        f"{name!r} is none of these, whatever its name or declared type say"
                    )
                chunk = head
                while chunk:
                    digest.update(chunk)
                    size += len(chunk)
                    target.write(chunk)
                    chunk = source.read(COPY_CHUNK_BYTES)
            final = self.path_of(digest.hexdigest())
            final.parent.mkdir(exist_ok=True)
            os.replace(incoming, final)
        except BaseException:
            Path(incoming).unlink(missing_ok=True)
            raise
        return StoredBytes(digest.hexdigest(), size, media_type)


async def store_photo(
    engine: AsyncEngine, store: PhotoStore, order_id: int, upload: PhotoSource
) -> Row[tuple[object, ...]] | None:
    """Store the bytes and attach them to the order; None when there is no such order (then
    nothing is written). NotAnImage when the bytes are not an image."""
    async with engine.connect() as conn:
        found = (await conn.execute(select(orders.c.id).where(orders.c.id == order_id))).first()
    if found is None:
        return None
    stored = await store.put(upload)
    filename = sanitize_filename(upload.filename)
    statement = (
        insert(photos)
        .values(
            order_id=order_id,
            filename=filename,
            content_type=stored.content_type,
            size=stored.size,
            sha256=stored.sha256,
        )
        .returning(*photos.c)
    )
    try:
        async with write_connection(engine) as conn, conn.begin():
            return (await conn.execute(statement)).one()
    except IntegrityError:
        # The order was deleted between the check and the insert. The bytes stay: they are
        # content-addressed, so another photo may share them.
        return None


def sanitize_filename(name: str | None) -> str:
    """A safe display name: no directories, no control or shell-special characters, at most
    255 characters with the extension kept."""
    if not name:
        return DEFAULT_FILENAME
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("_", name).strip(" .")
    if not name:
        return DEFAULT_FILENAME
    if len(name) > MAX_FILENAME_LENGTH:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            name = stem[: MAX_FILENAME_LENGTH - len(extension) - 1] + "." + extension
        else:
            name = name[:MAX_FILENAME_LENGTH]
    return name
