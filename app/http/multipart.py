"""The GraphQL multipart request spec (v2.0.0), read as the body streams in.

Parts must come in the spec's order: `operations` (JSON: one operation or a batch), then `map`
(JSON: `{"<file field>": ["<path>", ...]}`), then the files. Each rule is checked as soon as the
data to check it has arrived, so a bad request is refused before its files are uploaded; files go
into the request's `UploadSpool` chunk by chunk, never whole into memory. Files not named in `map`
are skipped unread. At the end each mapped path, which must hold `null`, gets the `UploadedFile`.

python-multipart's parser calls back synchronously; the callbacks only queue events, which are
then handled here with `await` (file writes happen off the event loop's thread).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from app.http.errors import RequestError, bad_request, too_large
from app.http.params import check_shape, json_type, parse_json
from app.settings import Settings
from app.uploads import SpoolWriter, UploadedFile, UploadSpool
from app.words import counted

PREFLIGHT_HEADERS = ("Apollo-Require-Preflight", "X-Apollo-Operation-Name", "GraphQL-Preflight")
SPEC = "https://github.com/jaydenseric/graphql-multipart-request-spec"


def check_preflight(request: Request, settings: Settings) -> None:
    """CSRF protection: a browser sends a custom header cross-site only after a CORS preflight
    the server can refuse, so a plain HTML form can never post a multipart operation."""
    if not settings.csrf_required:
        return
    if any(request.headers.get(name, "").strip() for name in PREFLIGHT_HEADERS):
        return
    *others, last = (f"`{name}`" for name in PREFLIGHT_HEADERS)
    raise RequestError(
        400,
        f"A multipart request must carry a non-empty {', '.join(others)} or {last} header "
        "(CSRF protection), e.g. `GraphQL-Preflight: 1`.",
        "CSRF_PREFLIGHT_REQUIRED",
    )


@dataclass(frozen=True, slots=True)
class LargerFiles:
    """The files of some requests may be larger than `max_file_bytes` (those of bulk jobs,
    app/http/job_uploads.py): up to `limit` bytes, set by the Settings field `setting`, when
    `applies(operations)` says so. The body may then be that much larger too."""

    limit: int
    setting: str
    applies: Callable[[Any], bool]

    def body_limit(self, settings: Settings) -> int:
        # The file, `operations` and `map`, and the parts' own lines.
        return max(settings.max_body_bytes, self.limit + 2 * settings.max_operations_bytes + 2**16)


async def read_multipart(
    request: Request, settings: Settings, spool: UploadSpool, larger: LargerFiles | None = None
) -> Any:
    """The `operations` JSON with every mapped path set to its `UploadedFile`."""
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise bad_request("The multipart Content-Type has no `boundary` parameter.")
    declared = request.headers.get("content-length", "")
    declared_size = int(declared) if declared.isdigit() else 0
    reader = _Reader(settings, spool, larger)
    received = 0

    def check_size() -> None:
        # Until `operations` is read (itself bounded by max_operations_bytes), the widest limit
        # the request could have (LargerFiles); from then on, its own.
        limit = reader.body_limit if reader.operations is not None else reader.widest_body
        if max(received, declared_size) > limit:
            raise reader.body_too_large()

    check_size()
    events = PartEvents()
    try:
        parser = MultipartParser(boundary, events.callbacks())
    except ValueError as error:  # python-multipart refuses some boundaries
        raise bad_request(f"The multipart boundary cannot be used: {error}.") from None
    try:
        async for chunk in request.stream():
            received += len(chunk)
            check_size()
            try:
                parser.write(chunk)
            except MultipartParseError as error:
                raise bad_request(f"The multipart body is malformed: {error}.") from None
            for event in events.drain():
                await reader.handle(event)
            check_size()  # `operations` may have arrived with this chunk
    except ClientDisconnect:
        raise bad_request("The client disconnected before the body was complete.") from None
    if not events.ended:
        raise bad_request(
            "The multipart body ended before its closing boundary: the request was cut short."
        )
    return reader.finish()


def _body_too_large(settings: Settings) -> RequestError:
    return too_large(
        "The request body is too large", "BODY_TOO_LARGE", "max_body_bytes", settings.max_body_bytes
    )


# ---- python-multipart callbacks -> events ----


@dataclass(slots=True)
class PartStart:
    name: str
    filename: str | None
    content_type: str


@dataclass(slots=True)
class PartData:
    data: bytes


@dataclass(slots=True)
class PartEnd:
    pass


Event = PartStart | PartData | PartEnd


@dataclass(slots=True)
class PartEvents:
    queue: list[Event] = field(default_factory=list)
    headers: dict[bytes, bytes] = field(default_factory=dict)
    header_name: bytes = b""
    header_value: bytes = b""
    ended: bool = False

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def drain(self) -> list[Event]:
        events, self.queue = self.queue, []
        return events

    def on_part_begin(self) -> None:
        self.headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_name.strip().lower()] = self.header_value.strip()
        self.header_name = self.header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        filename = options.get(b"filename")
        content_type = self.headers.get(b"content-type", b"application/octet-stream")
        self.queue.append(
            PartStart(
                _decode(name) if name is not None else "",
                _decode(filename) if filename is not None else None,
                _decode(content_type),
            )
        )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self.queue.append(PartData(data[start:end]))

    def on_part_end(self) -> None:
        self.queue.append(PartEnd())

    def on_end(self) -> None:
        self.ended = True


def _decode(raw: bytes) -> str:
    # Browsers and curl send file names as raw UTF-8 in the header.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


# ---- the spec's rules ----


@dataclass(slots=True)
class _Target:
    """Where one file goes: `container[key]`, reached by `path` from `operations`."""

    container: Any
    key: str | int
    path: str


class _Reader:
    def __init__(
        self, settings: Settings, spool: UploadSpool, larger: LargerFiles | None = None
    ) -> None:
        self.settings = settings
        self.spool = spool
        self.larger = larger
        # Until `operations` says otherwise (LargerFiles): the transport's own limits.
        self.file_limit = settings.max_file_bytes
        self.file_setting = "max_file_bytes"
        self.body_limit = settings.max_body_bytes
        self.widest_body = larger.body_limit(settings) if larger else settings.max_body_bytes
        self.parts = 0
        self.operations: Any = None
        self.targets: dict[str, list[_Target]] | None = None
        self.files: dict[str, UploadedFile] = {}
        self._field: bytearray | None = None
        self._field_name = ""
        self._file: SpoolWriter | None = None

    async def handle(self, event: Event) -> None:
        if isinstance(event, PartStart):
            self._start(event)
        elif isinstance(event, PartData):
            await self._data(event.data)
        else:
            await self._end()

    def _start(self, part: PartStart) -> None:
        self.parts += 1
        expected = {1: "operations", 2: "map"}.get(self.parts)
        if expected is not None:
            if part.name != expected:
                order = "first" if expected == "operations" else "second"
                raise bad_request(
                    f"The {order} part of a multipart request must be `{expected}`, "
                    f"not `{part.name}`: send `operations`, then `map`, then the files ({SPEC})."
                )
            self._field, self._field_name = bytearray(), expected
            return
        if part.name in ("operations", "map"):
            raise bad_request(f"The multipart request has a second `{part.name}` part.")
        assert self.targets is not None
        if part.name not in self.targets:
            return  # not named in `map`: skipped, as the spec allows
        if part.name in self.files:
            raise bad_request(f"The file part `{part.name}` arrives twice.")
        self._file = self.spool.new_file(part.name, part.filename, part.content_type)

    async def _data(self, data: bytes) -> None:
        if self._field is not None:
            self._field += data
            if len(self._field) > self.settings.max_operations_bytes:
                raise too_large(
                    f"The `{self._field_name}` part is too large",
                    "OPERATIONS_TOO_LARGE",
                    "max_operations_bytes",
                    self.settings.max_operations_bytes,
                )
        elif self._file is not None:
            await self._file.write(data)
            if self._file.size > self.file_limit:
                raise too_large(
                    f"The file `{self._file.field_name}` ({self._file.filename}) is too large",
                    "FILE_TOO_LARGE",
                    self.file_setting,
                    self.file_limit,
                )

    async def _end(self) -> None:
        if self._field is not None:
            value = parse_json(bytes(self._field), f"The `{self._field_name}` part")
            self._field = None
            if self._field_name == "operations":
                check_shape(value, self.settings)
                self.operations = value
                larger = self.larger
                if larger is not None and larger.limit > self.file_limit and larger.applies(value):
                    self.file_limit, self.file_setting = larger.limit, larger.setting
                    self.body_limit = larger.body_limit(self.settings)
            else:
                self.targets = self._resolve_map(value)
        elif self._file is not None:
            upload = await self._file.finish()
            self.files[upload.field_name] = upload
            self._file = None

    def _resolve_map(self, file_map: Any) -> dict[str, list[_Target]]:
        if not isinstance(file_map, dict):
            raise bad_request(
                f"`map` must be a JSON object of file part names to arrays of paths "
                f'(e.g. {{"0": ["variables.file"]}}), not {json_type(file_map)}.'
            )
        if len(file_map) > self.settings.max_files:
            raise too_large(
                f"`map` names {counted(len(file_map), 'file')}, too many for one request",
                "TOO_MANY_FILES",
                "max_files",
                self.settings.max_files,
            )
        targets: dict[str, list[_Target]] = {}
        mapped: dict[str, str] = {}
        for name, paths in file_map.items():
            if not (isinstance(paths, list) and paths and all(isinstance(p, str) for p in paths)):
                raise bad_request(
                    f'`map["{name}"]` must be a non-empty array of path strings '
                    f'(e.g. ["variables.file"]), not {json_type(paths)}.'
                )
            for path in paths:
                if path in mapped:
                    raise bad_request(
                        f"The path `{path}` is mapped twice in `map` "
                        f"(to `{mapped[path]}` and `{name}`)."
                    )
                mapped[path] = name
                targets.setdefault(name, []).append(_locate(self.operations, name, path))
        return targets

    def body_too_large(self) -> RequestError:
        limit = self.body_limit if self.operations is not None else self.widest_body
        if limit == self.settings.max_body_bytes:
            return _body_too_large(self.settings)
        assert self.larger is not None
        return too_large(
            "The request body is too large", "BODY_TOO_LARGE", self.larger.setting, limit
        )

    def finish(self) -> Any:
        if self.parts == 0:
            raise bad_request(f"The multipart request has no `operations` part ({SPEC}).")
        if self.targets is None:
            raise bad_request("The multipart request has no `map` part after `operations`.")
        missing = [name for name in self.targets if name not in self.files]
        if missing:
            listed = ", ".join(f"`{name}`" for name in missing)
            raise bad_request(f"The file part(s) {listed} named in `map` did not arrive.")
        for name, targets in self.targets.items():
            for target in targets:
                target.container[target.key] = self.files[name]
        return self.operations


def _locate(operations: Any, name: str, path: str) -> _Target:
    """The place a `map` path names; it must exist in `operations` and hold null."""
    node = operations
    walked: list[str] = []
    segments = path.split(".")
    for position, segment in enumerate(segments):
        where = ".".join(walked) or "operations"
        key: str | int
        if isinstance(node, dict):
            if segment not in node:
                raise _bad_path(name, path, f"`{where}` has no `{segment}`")
            key = segment
        elif isinstance(node, list):
            if not segment.isdigit() or int(segment) >= len(node):
                raise _bad_path(
                    name, path, f"`{where}` is an array of {len(node)}, `{segment}` is not an index"
                )
            key = int(segment)
        else:
            raise _bad_path(name, path, f"`{where}` is {json_type(node)}, it has no `{segment}`")
        if position == len(segments) - 1:
            if node[key] is not None:
                raise _bad_path(
                    name,
                    path,
                    f"it holds {json_type(node[key])}, not null: put null where the file goes",
                )
            return _Target(node, key, path)
        walked.append(segment)
        node = node[key]
    raise AssertionError("unreachable: str.split always returns at least one segment")


def _bad_path(name: str, path: str, reason: str) -> RequestError:
    return bad_request(
        f'`map["{name}"]` path `{path}` does not point at a null in `operations`: {reason}.'
    )
