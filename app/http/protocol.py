"""uvicorn's httptools protocol with the bounds it lacks: the request head's size, and how long a
client may leave its response unread.

**The head.** uvicorn's httptools protocol, what `batchery serve` runs, sets no limit on a
request's head: httptools hands every piece of a header to Python to be joined, uvicorn joins the
pieces of the URL into one bytes object, and nothing refuses any of it. Measured on this server:
a 30 MB header was read whole and answered 200, 3 million small headers took the worker to
600 MB, and a 100 MB request line stalled every other request for 7 s (joining is quadratic). No
body limit helps: the application is called only once the head is complete. This protocol counts
the bytes received while a request's head is incomplete and, past
`BATCHERY_MAX_REQUEST_HEAD_BYTES`, answers 431 naming the setting, stops reading and cuts the
connection; a head that came whole in one read is measured once parsed, before the application
is called. The count is per request (keep-alive starts each at zero); what is taken in may run
over the limit by one read of the socket (256 KiB at most), never more.

**Unread responses.** Flow control makes a response wait while the client does not read: a
client that keeps its connection open and reads nothing held its whole response (a streamed
batch, or a large answer) in the worker's memory for as long as it liked. A write that waits
longer than `BATCHERY_WRITE_STALL_SECONDS` for the client to take anything cuts the connection:
the application sees the client gone (a streamed batch cancels what is still running) and what
the client would not read is freed.

This is the one module that reaches into uvicorn's protocol internals (`data_received`, the
parser callbacks, `send_400_response`, `flow`, `transport`): uvicorn and httptools are pinned in
constraints.txt.
"""

from __future__ import annotations

import asyncio

import orjson
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.settings import Settings

SETTING = "BATCHERY_MAX_REQUEST_HEAD_BYTES"
# How long a refused client may go on sending (dropped) before the connection is cut.
GRACE_SECONDS = 1.0


class StallLimitedFlow(FlowControl):
    """uvicorn's flow control, but a client that takes nothing for `seconds` is cut off."""

    def __init__(self, transport: asyncio.Transport, seconds: float) -> None:
        super().__init__(transport)
        self.seconds = seconds

    async def drain(self) -> None:
        try:
            await asyncio.wait_for(self._is_writable_event.wait(), self.seconds)
        except TimeoutError:
            # The connection is lost at once: uvicorn marks the request disconnected (later
            # writes are dropped, the application hears `http.disconnect`) and the buffer goes.
            self._transport.abort()


class HeadTooLarge(Exception):
    """Raised in a parser callback to stop the parser (httptools wraps it in its error)."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    # None: read from the environment once per process (uvicorn's workers build their own).
    max_head_bytes: int | None = None
    write_stall_seconds: float | None = None

    _limit: int
    _head_bytes = 0
    _in_head = True
    _refused = False
    _too_large = False

    @classmethod
    def limit(cls) -> int:
        if cls.max_head_bytes is None:
            cls.max_head_bytes = Settings.from_env().max_request_head_bytes
        return cls.max_head_bytes

    @classmethod
    def stall_seconds(cls) -> float:
        if cls.write_stall_seconds is None:
            cls.write_stall_seconds = Settings.from_env().write_stall_seconds
        return cls.write_stall_seconds

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Read once per connection: the callbacks below run for every request.
        self._limit = self.limit()
        if self.stall_seconds() > 0:
            self.flow = StallLimitedFlow(self.transport, self.stall_seconds())

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head_bytes += len(data)
        # Parsed first: the read that completes a head may carry the body's first bytes too.
        super().data_received(data)
        if self._in_head and self._head_bytes > self._limit and not self._refused:
            self._refuse()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        # A head that arrived in one read is only measured here, once parsed.
        size = len(self.url) + 4 * len(self.headers)
        for name, value in self.headers:
            size += len(name) + len(value)
        if size > self._limit:
            self._too_large = True
            # Stops the parser before the application is called; uvicorn answers a parser
            # error with `send_400_response`, which says 431 instead.
            raise HeadTooLarge
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._too_large:
            self._refuse()
        else:
            super().send_400_response(msg)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # Whatever arrives next on this connection is the head of the next request.
        self._in_head = True
        self._head_bytes = 0

    def _refuse(self) -> None:
        limit = self.limit()
        message = (
            f"The request's head (request line and headers) is larger than {limit} bytes, "
            f"the limit set by {SETTING}: send less in the URL and headers (a long GraphQL "
            "document goes in a POST body)."
        )
        body = orjson.dumps(
            {
                "errors": [
                    {
                        "message": message,
                        "extensions": {
                            "code": "REQUEST_HEAD_TOO_LARGE",
                            "limit": limit,
                            "setting": SETTING,
                        },
                    }
                ]
            }
        )
        head = (
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n"
        )
        self._refused = True
        self.transport.write(head + body)
        # Half-close and stop reading: nothing more is taken in. The connection is cut a moment
        # later, so that a client reading while it sends gets the 431 before the reset.
        self.transport.write_eof()
        self.transport.pause_reading()
        self.loop.call_later(GRACE_SECONDS, self.transport.abort)
