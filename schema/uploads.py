"""Uploads: the `Upload` scalar and `uploadOrderPhoto`.

An `Upload` value is an `app.uploads.UploadedFile`, bound by the transport from a file part of a
multipart request (GraphQL multipart request spec). Anything else in its place (a string sent in
JSON variables, a literal in the query) is refused while variables are coerced, with a message
that says how to send a file.
"""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info
from strawberry.types.scalar import ScalarDefinition

from app.db.photos import NotAnImage, PhotoStore, store_photo
from app.uploads import UploadedFile
from schema.access import WRITE, requires
from schema.directives import DATABASE
from schema.ids import order_not_found, require_pk
from schema.types import Photo


def _parse_upload(value: Any) -> UploadedFile:
    if not isinstance(value, UploadedFile):
        raise ValueError(
            "an Upload is a file: send the request as multipart/form-data with the file in a "
            "part named in `map` (GraphQL multipart request spec), and null in its place here"
        )
    return value


def _serialize_upload(value: Any) -> None:
    raise GraphQLError("Upload is an input-only scalar: it cannot be returned")


UploadScalar = strawberry.scalar(
    name="Upload",
    description="A file part of a GraphQL multipart request.",
    parse_value=_parse_upload,
    serialize=_serialize_upload,
)

# For `StrawberryConfig(scalar_map=...)`: resolvers annotate uploads as `UploadedFile`.
SCALARS: dict[object, ScalarDefinition] = {UploadedFile: UploadScalar}


@strawberry.type
class UploadMutation:
    @strawberry.mutation(
        description="Stores the file (streamed, never held whole in memory) "
        "and attaches it to the order. The file must be a PNG, JPEG, WebP or GIF image, "
        "recognised from its bytes; its recorded type is the one detected.",
        directives=[*requires(WRITE), DATABASE],
    )
    async def upload_order_photo(
        self, info: Info, order_id: strawberry.ID, file: UploadedFile
    ) -> Photo:
        pk = require_pk(order_id, "orderId")
        store = PhotoStore(info.context.settings.photos_dir)
        try:
            row = await store_photo(info.context.engine, store, pk, file)
        except NotAnImage as refused:
            raise GraphQLError(
                f"file: {refused}", extensions={"code": "BAD_USER_INPUT", "argument": "file"}
            ) from None
        if row is None:
            raise order_not_found(order_id)
        return Photo.from_row(row)
