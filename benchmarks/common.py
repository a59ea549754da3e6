"""What the baseline and floor servers share: the database, the statement count, storing uploads.

Both read the same `BATCHERY_*` variables as Batchery (so the harness points all three at one
database), count SQL statements with the same hook as Batchery's metric, count the `/graphql`
requests they finished (so CPU per request divides by the requests the server did, not by those
the load generator saw), and store an upload the way a server should: streamed to disk in chunks
while hashing, never held whole in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import anyio
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from app.db.engine import create_engine
from app.db.reads import Reader, photos
from app.db.statements import listen_statements
from app.settings import Settings

CHUNK = 1024 * 1024


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    reader: Reader
    statements: list[int] = field(default_factory=lambda: [0])
    requests: list[int] = field(default_factory=lambda: [0])


def lifespan(state: dict[str, Resources]) -> Callable[[Starlette], Any]:
    @contextlib.asynccontextmanager
    async def run(app: Starlette) -> AsyncIterator[None]:
        settings = Settings.from_env()
        engine = create_engine(settings.resolved_database_url)
        resources = Resources(settings, engine, Reader(engine))
        stop = listen_statements(engine, lambda _sql: _count(resources))
        state["resources"] = resources
        try:
            yield
        finally:
            stop()
            await engine.dispose()

    return run


def _count(resources: Resources) -> None:
    resources.statements[0] += 1


def stats_endpoint(state: dict[str, Resources]) -> Callable[[Request], Awaitable[JSONResponse]]:
    """`GET /bench/stats`: the SQL statements run and `/graphql` requests finished so far (the
    harness reads it around a run)."""

    async def stats(request: Request) -> JSONResponse:
        resources = state["resources"]
        return JSONResponse(
            {"statements": resources.statements[0], "requests": resources.requests[0]}
        )

    return stats


class CountRequests:
    """Counts the `/graphql` requests the app finished handling, answered or not.

    When wrk stops, the requests in flight are still worked through by the server (uvicorn does
    not cancel an app whose client has gone), and that CPU lands in the run's measurement. Divided
    by wrk's count alone, a server whose requests take seconds is charged up to 8 extra requests:
    in a 2-second smoke run that doubled stock Strawberry's CPU per `big` request."""

    def __init__(self, app: ASGIApp, state: dict[str, Resources]) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http" and scope["path"] == "/graphql":
            self.state["resources"].requests[0] += 1


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def _create(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("wb")


@dataclass(frozen=True)
class StoredPhoto:
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str


async def store_upload(
    resources: Resources,
    order_id: int,
    filename: str,
    content_type: str,
    read: Callable[[int], Awaitable[bytes]],
) -> StoredPhoto:
    """Stream an upload to the photos directory in chunks, hashing as it goes, and record it."""
    directory = resources.settings.photos_dir
    path = directory / uuid.uuid4().hex
    digest = hashlib.sha256()
    size = 0
    out = await anyio.to_thread.run_sync(_create, path)
    try:
        while chunk := await read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            await anyio.to_thread.run_sync(out.write, chunk)
    finally:
        out.close()
    sha256 = digest.hexdigest()
    async with resources.engine.begin() as conn:
        result = await conn.execute(
            insert(photos)
            .values(
                order_id=order_id,
                filename=filename,
                content_type=content_type,
                size=size,
                sha256=sha256,
            )
            .returning(photos.c.id)
        )
        photo_id = result.scalar_one()
    await anyio.to_thread.run_sync(path.rename, directory / str(photo_id))
    return StoredPhoto(photo_id, filename, content_type, size, sha256)
