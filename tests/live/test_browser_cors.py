"""A real browser (headless Chromium) on a page of another origin: an allowed origin runs a JSON
batch and a multipart upload with an API key (both preflighted); a refused origin gets nothing,
and nothing is written.

Chromium runs with `--dump-dom`: it loads the page, lets its script finish (virtual time waits for
the page's fetches), and prints the DOM, where the script wrote what it saw. Skipped where no
Chromium is installed (`apt-get install chromium`).
"""

from __future__ import annotations

import asyncio
import functools
import html
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from app.db import keys
from app.db.engine import create_engine
from app.db.photos import photos
from tests.images import png
from tests.live.server import LiveServer

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium installed")

PAGE = """<!doctype html>
<html><body><pre id="out">pending</pre>
<script>
const api = %(api)s, key = %(key)s, image = new Uint8Array(%(image)s);
async function call(init) {
  try {
    const response = await fetch(api + "/graphql", init);
    return {status: response.status, requestId: response.headers.get("X-Request-Id"),
            body: await response.json()};
  } catch (error) {
    return {error: String(error)};
  }
}
async function main() {
  const auth = {"Authorization": "Bearer " + key};
  const batch = await call({method: "POST",
    headers: {...auth, "Content-Type": "application/json"},
    body: JSON.stringify([{query: "{ bakery(id: 1) { id } }"}, {query: "{ products { name } }"}])});
  const form = new FormData();
  form.append("operations", JSON.stringify({
    query: "mutation($f: Upload!) { uploadOrderPhoto(orderId: \\"1\\", file: $f) { id sha256 } }",
    variables: {f: null}}));
  form.append("map", JSON.stringify({"0": ["variables.f"]}));
  form.append("0", new Blob([image], {type: "image/png"}), "cake.png");
  const upload = await call({method: "POST", headers: {...auth, "GraphQL-Preflight": "1"},
                             body: form});
  document.getElementById("out").textContent = JSON.stringify({batch, upload});
}
main();
</script></body></html>
"""


class PageServer:
    """Serves one page from its own origin (a port of its own)."""

    def __init__(self, directory: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> PageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def pages(tmp_path: Path) -> Iterator[tuple[PageServer, PageServer]]:
    with PageServer(tmp_path) as allowed, PageServer(tmp_path) as refused:
        yield allowed, refused


def run_page(url: str, profile: Path) -> dict:
    completed = subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = re.search(r'<pre id="out">(.*?)</pre>', completed.stdout, re.S)
    assert found, completed.stdout[-2000:] + completed.stderr[-2000:]
    return json.loads(html.unescape(found.group(1)))


def photo_count(database_url: str) -> int:
    async def count() -> int:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                return int(
                    (await conn.execute(select(func.count()).select_from(photos))).scalar_one()
                )
        finally:
            await engine.dispose()

    return asyncio.run(count())


def create_key(database_url: str) -> str:
    async def create() -> str:
        engine = create_engine(database_url)
        try:
            return (await keys.create_key(engine, "browser", ["read", "write"])).key
        finally:
            await engine.dispose()

    return asyncio.run(create())


def test_a_page_on_an_allowed_origin_batches_and_uploads_and_a_refused_origin_gets_nothing(
    tmp_path, pages
):
    allowed, refused = pages
    with LiveServer(tmp_path / "api", cors_allow_origins=allowed.origin, auth="required") as api:
        # Answered once the server has started (and made its tables).
        assert httpx.get(api.url + "/healthz").status_code == 200
        database = api.settings.resolved_database_url
        key = create_key(database)
        (tmp_path / "page.html").write_text(
            PAGE
            % {
                "api": json.dumps(api.url),
                "key": json.dumps(key),
                "image": json.dumps(list(png(b"from a browser"))),
            }
        )

        seen = run_page(allowed.origin + "/page.html", tmp_path / "profile-allowed")
        assert seen["batch"]["status"] == 200, seen
        first, second = seen["batch"]["body"]
        assert first["data"] == {"bakery": {"id": "1"}}
        assert second["data"]["products"]
        assert re.fullmatch(r"[0-9a-f]{32}", seen["batch"]["requestId"])  # an exposed header
        assert seen["upload"]["status"] == 200, seen
        assert seen["upload"]["body"]["data"]["uploadOrderPhoto"]["id"]
        assert photo_count(database) == 1

        seen = run_page(refused.origin + "/page.html", tmp_path / "profile-refused")
        assert "Failed to fetch" in seen["batch"]["error"], seen
        assert "Failed to fetch" in seen["upload"]["error"], seen
        assert photo_count(database) == 1  # the preflight was refused: no upload was sent
