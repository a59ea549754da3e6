"""A streamed answer: each operation's response written the moment it is complete.

The batching appendix drafted in graphql/graphql-over-http: one GraphQL response per line
(`application/jsonl`), each carrying `requestIndex` / `variableIndex` so the client can put it in
its place, since they arrive in the order they finish, not the order sent. The same entries can be
framed as server-sent events (`event: next` per entry, `event: complete` at the end, as GraphQL
over SSE does) or as `multipart/mixed` parts (boundary `-`, each part followed at once by the
next delimiter, as Hot Chocolate, GraphQL Yoga and the incremental delivery RFC write them).

The status is 200 once the first byte is out; everything that goes wrong after that travels in
the entries. The operations run in a task beside the writer: when the client disconnects, the
batch runner (watching `receive`) cancels them; if the writer itself fails, it cancels the task;
either way nothing of the request is left running when the response returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.http.stream_media import EVENT_STREAM, JSONL, MULTIPART_MIXED

logger = logging.getLogger("batchery.http")

# Writes one entry of the answer (never raises: it only queues it).
Emit = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Framing:
    """How the entries of one streamed media type are written."""

    content_type: str
    start: bytes
    prefix: bytes
    suffix: bytes
    end: bytes

    def part(self, entry: dict[str, Any]) -> bytes:
        return self.prefix + orjson.dumps(entry) + self.suffix


FRAMINGS: Mapping[str, Framing] = {
    JSONL: Framing("application/jsonl; charset=utf-8", b"", b"", b"\n", b""),
    EVENT_STREAM: Framing(
        "text/event-stream; charset=utf-8",
        b"",
        b"event: next\ndata: ",
        b"\n\n",
        b"event: complete\ndata:\n\n",
    ),
    # Each part is followed by the next delimiter at once, so a reader knows it is complete
    # without waiting for the next entry; the last delimiter is closed with `--`.
    MULTIPART_MIXED: Framing(
        'multipart/mixed; boundary="-"',
        b"---",
        b"\r\nContent-Type: application/json; charset=utf-8\r\n\r\n",
        b"\r\n---",
        b"--\r\n",
    ),
}


class StreamedAnswer(Response):
    """Runs `produce(emit)` and writes every entry it emits as it comes.

    `after` runs once the stream is over, whatever ended it: what waited for the results to be
    gone (the garbage collector's pause, app/memory.py) must not run while they are still being
    written."""

    def __init__(
        self,
        media_type: str,
        produce: Callable[[Emit], Awaitable[None]],
        headers: Mapping[str, str] | None = None,
        after: list[Callable[[], None]] | None = None,
    ) -> None:
        self.framing = FRAMINGS[media_type]
        self.produce = produce
        self.after = after if after is not None else []
        # As Starlette's StreamingResponse: no `body`, hence no Content-Length (chunked).
        self.status_code = 200
        self.media_type = self.framing.content_type
        self.background = None
        self.init_headers({**(headers or {}), "Cache-Control": "no-store"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Unbounded, yet bounded by the request: at most one entry per operation it may hold.
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()

        async def producing() -> None:
            try:
                await self.produce(lambda entry: queue.put_nowait(self.framing.part(entry)))
            except Exception:  # the status is sent: the stream can only end early
                logger.exception("a streamed answer failed outside its operations")
            finally:
                queue.put_nowait(None)

        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        if self.framing.start:
            await send(
                {"type": "http.response.body", "body": self.framing.start, "more_body": True}
            )
        producer = asyncio.ensure_future(producing())
        try:
            while (chunk := await queue.get()) is not None:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": self.framing.end})
        finally:
            if not producer.done():
                producer.cancel()  # the writer failed: the operations go with it
            await asyncio.gather(producer, return_exceptions=True)
            for action in self.after:
                action()
