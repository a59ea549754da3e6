"""The request head (request line and headers) is bounded before uvicorn's parser buffers it.

uvicorn's httptools protocol keeps no limit of its own: a 30 MB header was read whole (and
answered 200), 3 million headers took the worker to 600 MB, and a 100 MB request line stalled
every other request for 7 s (uvicorn appends the URL's pieces to one bytes object). Over real
HTTP: uvicorn serving the app with the protocol `batchery serve` uses."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from sqlalchemy import text

from app.http.protocol import BoundedHttpToolsProtocol
from app.main import create_app

LIMIT = 16 * 1024


class Small(BoundedHttpToolsProtocol):
    max_head_bytes = LIMIT


@contextlib.asynccontextmanager
async def served(app) -> AsyncIterator[tuple[str, int]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    config = uvicorn.Config(app, lifespan="off", log_level="warning", http=Small)
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        yield "127.0.0.1", sock.getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


@pytest.fixture
async def server(engine, settings) -> AsyncIterator[tuple[str, int]]:
    app = create_app(settings, engine=engine)
    async with app.router.lifespan_context(app), served(app) as address:
        yield address


async def send_endless(address: tuple[str, int], start: bytes, filler: bytes) -> tuple[int, bytes]:
    """Send `start`, then `filler` over and over (up to 50 MB) without ending the head, reading
    meanwhile (as curl does); return how much was sent before the server cut the connection,
    and what it answered."""
    reader, writer = await asyncio.open_connection(*address)
    answer = asyncio.ensure_future(reader.read(4096))
    sent = 0
    try:
        writer.write(start)
        while sent < 50_000_000:
            writer.write(filler)
            await asyncio.wait_for(writer.drain(), 10)
            sent += len(filler)
    except ConnectionError:
        pass
    writer.close()
    return sent, await asyncio.wait_for(answer, 10)


@pytest.mark.parametrize(
    ("start", "filler"),
    [
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ", b"v" * 65536),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"X-Many: v\r\n" * 6000),
        (b"GET /graphql?query=", b"x" * 65536),
    ],
    ids=["one huge header", "many headers", "huge request line"],
)
async def test_a_head_past_the_limit_is_431_and_the_connection_is_cut(server, start, filler):
    sent, answer = await send_endless(server, start, filler)
    assert sent < 10_000_000, f"the server kept reading: {sent} bytes"
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"BATCHERY_MAX_REQUEST_HEAD_BYTES" in body and b"16384" in body


async def test_heads_within_the_limit_are_served_and_keep_alive_resets_the_count(server):
    host, port = server
    headers = {f"X-Pad-{i}": "v" * 100 for i in range(100)}  # ~11 KB, under 16 KiB
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
        for _ in range(5):  # one connection: each request's head counts alone
            response = await client.get("/healthz", headers=headers)
            assert response.status_code == 200
        response = await client.post(
            "/graphql", json={"query": "{ products { name } }", "pad": "x" * 100_000}
        )
        assert response.status_code == 200  # a body is not part of the head


async def test_a_head_past_the_limit_in_one_read_is_431_before_the_app_runs(server, engine):
    host, port = server
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
        response = await client.post(
            "/api/bakeries/delete-many", json={"ids": [1]}, headers={"X-Big": "v" * 20_000}
        )
    assert response.status_code == 431
    error = response.json()["errors"][0]
    assert error["extensions"] == {
        "code": "REQUEST_HEAD_TOO_LARGE",
        "limit": LIMIT,
        "setting": "BATCHERY_MAX_REQUEST_HEAD_BYTES",
    }
    async with engine.connect() as conn:  # the application never saw the request
        assert (
            await conn.execute(text("SELECT count(*) FROM bakeries WHERE id = 1"))
        ).scalar() == 1


# ---- a client that takes nothing of its response ----


async def ten_megabytes(scope, receive, send) -> None:
    """An answer far larger than the socket buffers, sent in pieces."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for _ in range(160):
        await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def until(condition, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.02)  # polling a condition, bounded


class Stalls(BoundedHttpToolsProtocol):
    max_head_bytes = LIMIT
    write_stall_seconds = 0.5


async def test_a_client_that_reads_nothing_is_cut_off_and_its_response_freed():
    # Flow control held the response (streamed or whole) for as long as the client kept the
    # connection open without reading: a connection per client, memory per connection, forever.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(
        uvicorn.Config(ten_megabytes, lifespan="off", log_level="warning", http=Stalls)
    )
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        await asyncio.get_running_loop().sock_connect(client, sock.getsockname())
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await until(lambda: bool(server.server_state.connections), "the server took the client")
        await until(lambda: not server.server_state.connections, "the stalled client is cut off")
    finally:
        client.close()
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()
