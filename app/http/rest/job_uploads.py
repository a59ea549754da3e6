"""The body of `POST /api/jobs`, read as it streams: a job's parameters and its file's bytes.

Two shapes, neither ever held whole in memory:

- `multipart/form-data` (`curl -F entity=bakeries -F operation=CREATE -F file=@records.jsonl`):
  the parameters are form fields, which must come before the `file` part; the file's bytes are
  handed on as they arrive (the parts after it are not read).
- a raw body (`Content-Type: application/x-ndjson` or `text/csv`, `curl --data-binary @...`):
  the parameters are query parameters, the body is the file.

Parameters: `entity` (bakeries, cake-orders), `operation` (CREATE, UPDATE, UPSERT, DELETE),
`format` (jsonl, csv; else from the file name or the media type), and the bulk options
`atomic`, `continueOnError`, `validateOnly`, `returnRecords` (true/false) or `options` (a JSON
object of them, as in `POST /api/{resource}/bulk`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import orjson
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from app.bulk.jobs.model import FileFormat
from app.bulk.model import Operation, OptionOverrides
from app.http.multipart import PartData, PartEnd, PartEvents, PartStart
from app.http.rest.io import HttpError, bad_request
from app.http.rest.shapes import OPTIONS, parse_options

FILE_FIELD = "file"
MAX_FIELD_BYTES = 64 * 1024
RAW_TYPES = {
    "application/x-ndjson": FileFormat.JSONL,
    "application/jsonl": FileFormat.JSONL,
    "application/jsonlines": FileFormat.JSONL,
    "text/csv": FileFormat.CSV,
}
SUFFIXES = {".jsonl": FileFormat.JSONL, ".ndjson": FileFormat.JSONL, ".csv": FileFormat.CSV}
ENTITIES = ("bakeries", "cake-orders")
TRUE, FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})


@dataclass(frozen=True, slots=True)
class JobUpload:
    fields: Mapping[str, str]
    filename: str | None
    media_type: str
    chunks: AsyncIterator[bytes]


async def read_upload(request: Request) -> JobUpload:
    media_type, _ = parse_options_header(request.headers.get("content-type", ""))
    kind = media_type.decode("latin-1").lower()
    if kind == "multipart/form-data":
        return await _FormReader(request).until_file()
    if kind in RAW_TYPES:
        return JobUpload(dict(request.query_params), None, kind, _body(request))
    raise HttpError(
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "send the file as multipart/form-data (a `file` part after the fields), or as the "
        "body with Content-Type application/x-ndjson or text/csv and the parameters in the "
        f"query string; got {kind or 'no Content-Type'!r}",
    )


async def _body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        raise bad_request("the client disconnected before the file was complete") from None


class _FormReader:
    def __init__(self, request: Request) -> None:
        _, params = parse_options_header(request.headers.get("content-type", ""))
        boundary = params.get(b"boundary")
        if not boundary:
            raise bad_request("the multipart Content-Type has no `boundary` parameter")
        self.events = PartEvents()
        try:
            self.parser = MultipartParser(boundary, self.events.callbacks())
        except ValueError as error:
            raise bad_request(f"the multipart boundary cannot be used: {error}") from None
        self.stream = aiter(request.stream())
        self.pending: list[PartStart | PartData | PartEnd] = []

    async def _next_event(self) -> PartStart | PartData | PartEnd | None:
        while not self.pending:
            if self.events.ended:
                return None
            try:
                chunk = await anext(self.stream)
            except StopAsyncIteration:
                raise bad_request(
                    "the multipart body ended before its closing boundary: it was cut short"
                ) from None
            except ClientDisconnect:
                raise bad_request("the client disconnected before the body was complete") from None
            try:
                self.parser.write(chunk)
            except MultipartParseError as error:
                raise bad_request(f"the multipart body is malformed: {error}") from None
            self.pending = self.events.drain()
        return self.pending.pop(0)

    async def until_file(self) -> JobUpload:
        fields: dict[str, str] = {}
        current: str | None = None
        value = bytearray()
        while (event := await self._next_event()) is not None:
            if isinstance(event, PartStart):
                if event.name == FILE_FIELD and event.filename is not None:
                    return JobUpload(fields, event.filename, event.content_type, self._file())
                current, value = event.name, bytearray()
            elif isinstance(event, PartData) and current is not None:
                value += event.data
                if len(value) > MAX_FIELD_BYTES:
                    raise bad_request(f"the form field {current!r} is too long", current)
            elif isinstance(event, PartEnd) and current is not None:
                fields[current] = value.decode("utf-8", "replace")
                current = None
        raise bad_request(
            "the form has no `file` part (a file, with a filename): send the fields first, "
            "then the file, e.g. curl -F entity=bakeries -F operation=CREATE "
            "-F file=@records.jsonl",
            FILE_FIELD,
        )

    async def _file(self) -> AsyncIterator[bytes]:
        while (event := await self._next_event()) is not None:
            if isinstance(event, PartData):
                if event.data:
                    yield event.data
            else:  # the file part's end (what follows it is not read)
                return
        raise bad_request("the multipart body ended inside the file part")


def operation_of(fields: Mapping[str, str]) -> Operation:
    raw = fields.get("operation", "").strip().upper()
    if raw not in Operation.__members__:
        names = ", ".join(Operation.__members__)
        raise bad_request(f"operation must be one of {names}, got {raw!r}", "operation")
    return Operation[raw]


def entity_of(fields: Mapping[str, str]) -> str:
    raw = fields.get("entity", "").strip().lower().replace("_", "-")
    if raw not in ENTITIES:
        raise bad_request(f"entity must be one of {', '.join(ENTITIES)}, got {raw!r}", "entity")
    return raw


def format_of(upload: JobUpload) -> FileFormat:
    chosen = upload.fields.get("format")
    if chosen:
        try:
            return FileFormat(chosen.strip().lower())
        except ValueError:
            raise bad_request(f"format must be jsonl or csv, got {chosen!r}", "format") from None
    name = (upload.filename or "").lower()
    for suffix, found in SUFFIXES.items():
        if name.endswith(suffix):
            return found
    if upload.media_type.lower() in RAW_TYPES:
        return RAW_TYPES[upload.media_type.lower()]
    raise bad_request(
        f"cannot tell the format of {upload.filename or 'the file'!r} ({upload.media_type}): "
        "name it *.jsonl or *.csv, or send format=jsonl or format=csv",
        "format",
    )


def options_of(fields: Mapping[str, str]) -> OptionOverrides:
    """`options` (JSON), then each option given on its own (which wins)."""
    found = OptionOverrides()
    raw = fields.get("options")
    if raw:
        try:
            parsed = parse_options(orjson.loads(raw))
        except orjson.JSONDecodeError:
            raise bad_request("options must be a JSON object", "options") from None
        found = parsed or found
    values = {
        "atomic": found.atomic,
        "return_records": found.return_records,
        "continue_on_error": found.continue_on_error,
        "validate_only": found.validate_only,
    }
    for public, name in OPTIONS.items():
        given = fields.get(public)
        if given is None:
            continue
        lowered = given.strip().lower()
        if lowered not in TRUE | FALSE:
            raise bad_request(f"{public} must be true or false, got {given!r}", public)
        values[name] = lowered in TRUE
    return OptionOverrides(**values)
