"""Faults a test controls: a TCP proxy in front of PostgreSQL that the test cuts and restores.

    proxy = await CuttableProxy.start("127.0.0.1", 5432)
    engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/test")
    await proxy.cut()      # every open connection closed, new ones refused (nothing listens)
    await proxy.restore()  # listening again on the same port
    await proxy.close()

The shared PostgreSQL is never touched: only the path to it is broken.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket


class CuttableProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.connections = 0  # accepted since start: proof that traffic went through the proxy

    @classmethod
    async def start(cls, upstream_host: str, upstream_port: int) -> CuttableProxy:
        proxy = cls(upstream_host, upstream_port)
        await proxy.restore()
        return proxy

    async def restore(self) -> None:
        if self.server is not None:
            return
        # Bound by hand with SO_REUSEADDR, so the same port can be listened on again at once.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self.server = await asyncio.start_server(self._serve, sock=sock)

    async def cut(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def close(self) -> None:
        await self.cut()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self.writers.add(up_writer)
        pipes = [
            asyncio.ensure_future(_pipe(reader, up_writer)),
            asyncio.ensure_future(_pipe(up_reader, writer)),
        ]
        self.tasks.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
                self.tasks.discard(pipe)
            for end in (writer, up_writer):
                end.transport.abort()
                self.writers.discard(end)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
