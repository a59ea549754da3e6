"""`GET /photos/{id}`: the bytes of an uploaded photo, with the content type recorded for it.

Uploaded bytes are the client's, not ours: they are served so that a browser cannot run them as
this site's page (`nosniff`, a sandboxing CSP, and a download instead of inline display for types
other than raster images).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from app.db.models import INT_MAX
from app.db.photos import PhotoStore
from app.db.reads import Reader
from app.http.access import caller_of
from app.http.errors import RequestError
from app.http.media import JSON, render
from app.settings import Settings
from schema.access import READ

INLINE_PREFIX = "image/"
NOT_INLINE = {"image/svg+xml"}  # SVG can carry script


async def photo_endpoint(request: Request) -> Response:
    caller = caller_of(request)
    if READ not in caller.scopes:
        return render(
            RequestError(
                403,
                f"Photos need the scope 'read', which {caller.id} does not have.",
                "FORBIDDEN",
            ).payload(),
            JSON,
            403,
        )
    photo_id: int = request.path_params["photo_id"]
    reader: Reader = request.app.state.reader
    # Past INT_MAX no row has that key, and the databases refuse it as a parameter.
    row = await reader.photo(photo_id) if photo_id <= INT_MAX else None
    if row is None:
        return _not_found(f"There is no photo with id {photo_id}.")
    settings: Settings = request.app.state.settings
    path = PhotoStore(settings.photos_dir).path_of(str(row.sha256))
    if not path.is_file():
        return _not_found(f"The bytes of photo {photo_id} are missing from the photo store.")
    media_type = str(row.content_type)
    inline = media_type.startswith(INLINE_PREFIX) and media_type not in NOT_INLINE
    return FileResponse(
        path,
        media_type=media_type if inline else "application/octet-stream",
        filename=str(row.filename),
        content_disposition_type="inline" if inline else "attachment",
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
            # A photo id always names the same bytes.
            "Cache-Control": "public, max-age=31536000, immutable",
            "ETag": f'"{row.sha256}"',
        },
    )


def _not_found(message: str) -> Response:
    return render(RequestError(404, message, "NOT_FOUND").payload(), JSON, 404)
