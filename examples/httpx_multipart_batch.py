"""A multipart batch from Python with httpx: two photos for two orders and a query, one request.

    python examples/httpx_multipart_batch.py [URL] [photo ...]

httpx sends the form fields (`operations`, then `map`) before the files, in the order given, as
the GraphQL multipart request spec requires, and streams each file from disk.
"""

from __future__ import annotations

import json
import mimetypes
import sys
from pathlib import Path

import httpx

HERE = Path(__file__).parent
UPLOAD = """
mutation($orderId: ID!, $file: Upload!) {
  uploadOrderPhoto(orderId: $orderId, file: $file) { id filename contentType size sha256 url }
}
"""


def upload_batch(url: str, photos: list[Path]) -> list[dict]:
    operations: list[dict] = [
        {"query": UPLOAD, "variables": {"orderId": str(n), "file": None}}
        for n, _ in enumerate(photos, start=1)
    ]
    operations.append({"query": '{ cakeOrder(id: "1") { id photo { filename } } }'})
    # File part `i` goes to operation i's `file` variable.
    file_map = {str(i): [f"{i}.variables.file"] for i in range(len(photos))}
    handles = [path.open("rb") for path in photos]
    try:
        files = [
            (
                str(i),
                (
                    path.name,
                    handle,
                    mimetypes.guess_type(path.name)[0] or "application/octet-stream",
                ),
            )
            for i, (path, handle) in enumerate(zip(photos, handles, strict=True))
        ]
        response = httpx.post(
            url,
            data={"operations": json.dumps(operations), "map": json.dumps(file_map)},
            files=files,
            # Required on multipart requests (CSRF protection).
            headers={"GraphQL-Preflight": "1"},
            timeout=60,
        )
    finally:
        for handle in handles:
            handle.close()
    response.raise_for_status()
    return response.json()


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/graphql"
    photos = [Path(arg) for arg in sys.argv[2:]] or sorted((HERE / "files").glob("*.png"))
    print(json.dumps(upload_batch(url, photos), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
