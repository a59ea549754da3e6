"""A WebSocket client for the app in the test's own event loop: the ASGI `websocket` messages
driven through two queues, speaking `graphql-transport-ws` (no server, no thread)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.types import ASGIApp

PROTOCOL = "graphql-transport-ws"
# Long enough for a slow shared machine; a wait this long means the server never answered.
WAIT_SECONDS = 10


class Socket:
    def __init__(self, inbox: asyncio.Queue[dict], outbox: asyncio.Queue[dict]) -> None:
        self._inbox = inbox
        self._outbox = outbox

    async def send(self, message: dict[str, Any]) -> None:
        await self._inbox.put({"type": "websocket.receive", "text": json.dumps(message)})

    async def receive(self) -> dict[str, Any]:
        """The next protocol message; a close is returned as `{"type": "close", ...}`."""
        event = await asyncio.wait_for(self._outbox.get(), WAIT_SECONDS)
        if event["type"] == "websocket.close":
            return {"type": "close", "code": event.get("code"), "reason": event.get("reason")}
        assert event["type"] == "websocket.send", event
        return json.loads(event["text"])


@asynccontextmanager
async def graphql_socket(
    app: ASGIApp, payload: dict | None = None, *, acknowledged: bool = True
) -> AsyncIterator[Socket]:
    """A `graphql-transport-ws` socket on `/graphql`, its `connection_init` sent (and, unless
    `acknowledged` is False, answered with `connection_ack`)."""
    inbox: asyncio.Queue[dict] = asyncio.Queue()
    outbox: asyncio.Queue[dict] = asyncio.Queue()
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"sec-websocket-protocol", PROTOCOL.encode())],
        "subprotocols": [PROTOCOL],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "websocket.connect"})
    accepted = await asyncio.wait_for(outbox.get(), WAIT_SECONDS)
    assert accepted["type"] == "websocket.accept", accepted
    socket = Socket(inbox, outbox)
    await socket.send({"type": "connection_init", "payload": payload or {}})
    if acknowledged:
        assert await socket.receive() == {"type": "connection_ack"}
    try:
        yield socket
    finally:
        await inbox.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(task, WAIT_SECONDS)
