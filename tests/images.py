"""The smallest byte strings each accepted image type is recognised by (its magic number and a
little more), and real files for end-to-end checks."""

from __future__ import annotations

from pathlib import Path

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00"
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 "

EXAMPLE_PNG = Path(__file__).resolve().parents[1] / "examples" / "files" / "strawberry-cake.png"


def png(payload: bytes = b"") -> bytes:
    """PNG-signed bytes: distinct payloads give distinct photos (and digests)."""
    return PNG + payload
