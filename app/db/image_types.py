"""What kind of image a file is, from its first bytes: the photo store keeps images only.

A client's filename and declared `Content-Type` are claims; the magic numbers at the start of the
bytes are what a browser (or an image library) will act on. Four formats, each fixed by its own
specification, so a table is enough (no libmagic).
"""

from __future__ import annotations

# What `image_type` needs to see to decide.
HEAD_BYTES = 12

ACCEPTED = "PNG, JPEG, WebP or GIF"


def image_type(head: bytes) -> str | None:
    """The media type of the image that starts with `head`, or None when it is none of ours."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None
