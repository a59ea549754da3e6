"""A live server per test session (SQLite; these tests are about real HTTP clients)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live.server import LiveServer


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("live"), upload_spool_bytes=64 * 1024) as server:
        yield server
