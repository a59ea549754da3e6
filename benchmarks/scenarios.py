"""The benchmark's scenarios: the operations, and the exact HTTP requests that carry them.

Requests follow `shared/contract/http.md` (JSON objects, JSON-array batches, the multipart
request spec with a CSRF preflight header), so a server that implements the contract can run
every scenario; one that does not gets "failed: <why>" in the table.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import orjson

HELLO = "{ __typename }"
SMALL = "{ bakeries(first: 10) { name orders(limitTo: 5) { id writtenPhrase } } }"
BIG = "{ bakeries { name orders(limitTo: 50) { id writtenPhrase } } }"
DEEP = "{ bakeries { suppliers { bakeries { orders { id } } } } }"
# The heaviest query of this shape the default limits allow on the demo data (50 x 200): cost
# 4 x 120,560 = 482,240 (BATCHERY_MAX_OPERATION_COST is 500,000), 4 x 20,050 = 80,200 nodes, ~8 MB.
HEAVY = (
    "{ "
    + " ".join(
        f"a{i}: bakeries(first: 50) {{ orders(limitTo: 200) {{ id writtenPhrase currentTotal "
        "status createdAt externalId bakery { name region } } }"
        for i in range(4)
    )
    + " }"
)
UPLOAD = (
    'mutation($file: Upload!) { uploadOrderPhoto(orderId: "1", file: $file) { id size sha256 } }'
)

MIB = 1024 * 1024
BOUNDARY = "batchery-bench-boundary-7d1f"
PREFLIGHT = {"Apollo-Require-Preflight": "true"}


@dataclass(frozen=True)
class Request:
    """One HTTP request, its body either in memory or produced in chunks (100 MiB)."""

    headers: dict[str, str]
    body: bytes = b""
    chunks: tuple[bytes, ...] = ()
    repeat: int = 0  # the middle chunk is sent this many times

    @property
    def length(self) -> int:
        if not self.chunks:
            return len(self.body)
        head, middle, tail = self.chunks
        return len(head) + len(middle) * self.repeat + len(tail)

    def stream(self) -> Iterator[bytes]:
        if not self.chunks:
            yield self.body
            return
        head, middle, tail = self.chunks
        yield head
        for _ in range(self.repeat):
            yield middle
        yield tail


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    # alongside: `request` under load while `background` is sent again and again (one at a time)
    kind: Literal["wrk", "upload", "alongside"] = "wrk"
    ops_per_request: int = 1
    # Needs the contract's transport (JSON-array batches or multipart), not only JSON objects.
    transport: bool = False
    request: Request = field(default_factory=lambda: Request({}))
    background: Request | None = None
    # The servers it is meant for (None: all).
    only: tuple[str, ...] | None = None


def json_request(payload: object) -> Request:
    return Request({"Content-Type": "application/json"}, orjson.dumps(payload))


# Uploads must be images (recognised from their first bytes): each file starts as a PNG does.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _file_block(seed: int) -> bytes:
    """1 MiB of incompressible bytes behind a PNG signature, the same on every run."""
    return PNG_SIGNATURE + random.Random(seed).randbytes(MIB - len(PNG_SIGNATURE))


def multipart_batch(files: int) -> Request:
    """A batch of `files` upload operations, one 1 MiB file each (the multipart request spec)."""
    operations = [{"query": UPLOAD, "variables": {"file": None}} for _ in range(files)]
    mapping = {str(i): [f"{i}.variables.file"] for i in range(files)}
    parts = [_field("operations", orjson.dumps(operations)), _field("map", orjson.dumps(mapping))]
    for i in range(files):
        parts.append(_file_header(str(i), f"photo{i}.bin") + _file_block(i) + b"\r\n")
    body = b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
    return Request(_multipart_headers(), body)


def large_upload(mebibytes: int) -> Request:
    """One upload operation with a file of `mebibytes` MiB, produced 1 MiB at a time."""
    operations = {"query": UPLOAD, "variables": {"file": None}}
    mapping = {"0": ["variables.file"]}
    head = (
        _field("operations", orjson.dumps(operations))
        + _field("map", orjson.dumps(mapping))
        + _file_header("0", "large.bin")
    )
    tail = b"\r\n" + f"--{BOUNDARY}--\r\n".encode()
    return Request(_multipart_headers(), chunks=(head, _file_block(100), tail), repeat=mebibytes)


def _multipart_headers() -> dict[str, str]:
    return {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **PREFLIGHT}


def _field(name: str, value: bytes) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value
        + b"\r\n"
    )


def _file_header(name: str, filename: str) -> bytes:
    return (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


def all_scenarios(upload_mebibytes: int = 100) -> list[Scenario]:
    return [
        Scenario("hello", "`{ __typename }`", request=json_request({"query": HELLO})),
        Scenario("small", "10 bakeries x 5 orders", request=json_request({"query": SMALL})),
        Scenario("big", "50 bakeries x 50 orders (2,500)", request=json_request({"query": BIG})),
        Scenario(
            "deep",
            "bakeries > suppliers > bakeries > orders",
            request=json_request({"query": DEEP}),
        ),
        Scenario(
            "alongside",
            "`small` while the heaviest allowed query (cost 482,240, 80,200 nodes) runs in a loop",
            kind="alongside",
            request=json_request({"query": SMALL}),
            background=json_request({"query": HEAVY}),
            only=("batchery",),
        ),
        Scenario(
            "batch20",
            "JSON array of 20 `small` queries in one request",
            ops_per_request=20,
            transport=True,
            request=json_request([{"query": SMALL}] * 20),
        ),
        Scenario(
            "multipart5",
            "multipart batch: 5 uploads of 1 MiB",
            ops_per_request=5,
            transport=True,
            request=multipart_batch(5),
        ),
        Scenario(
            "upload100",
            f"one upload of {upload_mebibytes} MiB",
            kind="upload",
            transport=True,
            request=large_upload(upload_mebibytes),
        ),
    ]
