"""Multipart bodies built part by part, so tests control the order and content of every part."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

BOUNDARY = "batchery-test-boundary-7d1f"
PREFLIGHT = {"GraphQL-Preflight": "1"}


@dataclass(frozen=True)
class Part:
    name: str
    content: bytes
    filename: str | None = None
    content_type: str | None = None


def field(name: str, value: Any) -> Part:
    """A JSON field (`operations`, `map`); strings are sent as they are."""
    text = value if isinstance(value, str) else json.dumps(value)
    return Part(name, text.encode())


def file(
    name: str, content: bytes, filename: str = "cake.jpg", content_type: str = "image/jpeg"
) -> Part:
    return Part(name, content, filename, content_type)


def body(*parts: Part, closed: bool = True) -> bytes:
    chunks: list[bytes] = []
    for part in parts:
        disposition = f'form-data; name="{part.name}"'
        if part.filename is not None:
            disposition += f'; filename="{part.filename}"'
        head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
        if part.content_type:
            head += f"Content-Type: {part.content_type}\r\n"
        chunks.append(head.encode() + b"\r\n" + part.content + b"\r\n")
    if closed:
        chunks.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(chunks)


def headers(preflight: bool = True, **extra: str) -> dict[str, str]:
    result = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **extra}
    if preflight:
        result.update(PREFLIGHT)
    return result


UPLOAD = (
    "mutation($orderId: ID!, $file: Upload!) "
    "{ uploadOrderPhoto(orderId: $orderId, file: $file) "
    "{ id filename contentType size sha256 url } }"
)


def upload_operation(order_id: str = "1") -> dict[str, Any]:
    return {"query": UPLOAD, "variables": {"orderId": order_id, "file": None}}
