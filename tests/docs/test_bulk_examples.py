"""docs/bulk.md stays true: every curl example runs, in order, against the app on a database seeded
as `make run` seeds it, and must answer the documented status and body.

Only the values that change from run to run are not compared (batch ids, durations). The examples
run on SQLite, as `make run` serves them: their ids assume SQLite, which hands out again the rowids
of rows rolled back (a `validateOnly` CREATE), where PostgreSQL's sequences skip them.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest_asyncio

from app.db.engine import create_engine
from app.db.migrate import upgrade
from app.db.seed import SeedSize, seed
from app.main import create_app
from app.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "bulk.md"
EXAMPLE = re.compile(
    r"```sh\n(?P<command>.*?)\n```\nHTTP (?P<status>\d{3}):\n```json\n(?P<body>.*?)```", re.S
)
VOLATILE = {"batchId", "durationMs"}
HOST = "localhost:8000"


class Example:
    def __init__(self, command: str, status: int, body: str) -> None:
        self.command = command
        self.status = status
        self.body = orjson.loads(body) if body.strip() else None
        self.stdin = b""
        if "|" in command:
            # `python3 -c '...' | curl ... -d @-`: the body comes from the first command.
            producer, command = command.split("|", 1)
            argv = shlex.split(producer.replace("\\\n", " "))
            argv[0] = sys.executable
            self.stdin = subprocess.run(argv, capture_output=True, check=True).stdout
        self.method, self.path, self.headers, self.data = self._parse(command)

    def _parse(self, command: str) -> tuple[str, str, dict[str, str], bytes | None]:
        tokens = iter(shlex.split(command.replace("\\\n", " ")))
        assert next(tokens) == "curl"
        method, path, headers, data = None, None, {}, None
        for token in tokens:
            if token == "-s":
                continue
            if token == "-X":
                method = next(tokens)
            elif token == "-H":
                name, _, value = next(tokens).partition(":")
                headers[name.strip()] = value.strip()
            elif token == "-d":
                value = next(tokens)
                data = self.stdin if value == "@-" else value.encode()
            else:
                assert HOST in token, f"unexpected curl argument {token!r}"
                path = token.split(HOST, 1)[1]
        assert path is not None
        return method or ("POST" if data is not None else "GET"), path, headers, data

    def __repr__(self) -> str:
        return f"{self.method} {self.path}"


def examples() -> list[Example]:
    found = [
        Example(m["command"], int(m["status"]), m["body"])
        for m in EXAMPLE.finditer(DOC.read_text())
    ]
    assert len(found) >= 25, "the examples of docs/bulk.md were not found"
    return found


def masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "…" if k in VOLATILE else masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    return value


@pytest_asyncio.fixture
async def demo_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}")
    await upgrade(engine)
    await seed(engine, SeedSize())  # what `batchery seed` writes
    app = create_app(Settings(data_dir=tmp_path), engine=engine)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                yield c
    finally:
        await engine.dispose()


async def test_every_example_of_the_bulk_docs_answers_as_documented(demo_client):
    for number, example in enumerate(examples(), start=1):
        response = await demo_client.request(
            example.method, example.path, headers=example.headers, content=example.data
        )
        where = f"example {number} ({example!r}) in docs/bulk.md"
        assert response.status_code == example.status, f"{where}: {response.text}"
        actual = response.json() if response.content else None
        assert masked(actual) == masked(example.body), where
