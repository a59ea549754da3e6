"""Temporary files are removed whatever ends the request: a client that disconnects mid-upload,
or the request's task being cancelled (server shutdown) while a file is half written."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.app.http.forms import body, field, file, headers, upload_operation
from tests.helpers import graphql_scope

SPOOL_BYTES = 16 * 1024
CHUNK = 32 * 1024


def upload_chunks() -> list[bytes]:
    content = body(
        field("operations", upload_operation("1")),
        field("map", {"0": ["variables.file"]}),
        file("0", os.urandom(400_000)),
    )
    return [content[i : i + CHUNK] for i in range(0, len(content), CHUNK)]


def spooled_files(root: Path) -> list[Path]:
    """The uploads' bytes on disk (each request directory also has a lock file beside it)."""
    return [p for p in root.rglob("part-*") if p.is_file()] if root.exists() else []


def anything_left(root: Path) -> list[Path]:
    return list(root.rglob("*")) if root.exists() else []


async def start(client, receive) -> tuple[asyncio.Task, list[dict]]:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    multipart = headers()
    content_type = multipart.pop("Content-Type")
    task = asyncio.ensure_future(client.app(graphql_scope(content_type, multipart), receive, send))
    return task, sent


@pytest.fixture
async def spooling_client(app_client):
    async with app_client(upload_spool_bytes=SPOOL_BYTES) as client:
        yield client


async def test_a_client_disconnecting_mid_upload_leaves_no_file(spooling_client, engine):
    client = spooling_client
    root = client.app.state.settings.resolved_upload_spool_dir
    chunks = upload_chunks()
    sent_chunks = 0
    seen_on_disk: list[int] = []

    async def receive() -> dict:
        nonlocal sent_chunks
        seen_on_disk.append(len(spooled_files(root)))
        if sent_chunks < len(chunks) // 2:
            sent_chunks += 1
            return {"type": "http.request", "body": chunks[sent_chunks - 1], "more_body": True}
        return {"type": "http.disconnect"}

    task, sent = await start(client, receive)
    await task
    # The file was on disk while the body streamed in, and is gone now.
    assert max(seen_on_disk) == 1
    assert anything_left(root) == []
    assert sent[0]["status"] == 400


async def test_cancelling_the_request_mid_upload_leaves_no_file(spooling_client):
    client = spooling_client
    root = client.app.state.settings.resolved_upload_spool_dir
    chunks = upload_chunks()
    halfway = len(chunks) // 2
    given = 0
    reached_halfway = asyncio.Event()
    never = asyncio.Event()

    async def receive() -> dict:
        nonlocal given
        if given == halfway:
            # Every chunk so far has been handled: the file is half written to disk.
            reached_halfway.set()
            await never.wait()
        given += 1
        return {"type": "http.request", "body": chunks[given - 1], "more_body": True}

    task, _ = await start(client, receive)
    await asyncio.wait_for(reached_halfway.wait(), timeout=10)
    assert len(spooled_files(root)) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert anything_left(root) == []
