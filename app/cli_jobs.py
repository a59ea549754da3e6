"""`batchery jobs submit|watch|list|cancel|download`: bulk jobs of a running server, over its REST
API (app/http/rest/jobs.py), from any machine.

Unlike `batchery import`, which writes into a database from the server's shell, these commands
are clients: they need the server's URL (`--url`, else BATCHERY_API_URL, else
http://127.0.0.1:8000) and a key with the `bulk` scope (`--key`, else BATCHERY_API_KEY; none in
open mode). `submit` streams the file as the request body (never whole in memory) and prints the
job's id on stdout alone (`ID=$(batchery jobs submit ...)`); `watch` draws a progress bar from
the job's Server-Sent Events until the final event, then prints a summary and where to download
the results. Exit status: 0 done with every record written, 1 some records failed or the job did
not complete, 2 the request was refused or the server could not be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
URL_VARIABLE = "BATCHERY_API_URL"
KEY_VARIABLE = "BATCHERY_API_KEY"
KINDS = ("results", "failed", "unprocessed")
OPERATIONS = ("CREATE", "UPDATE", "UPSERT", "DELETE")
ENTITIES = ("bakeries", "cake-orders")
STATUSES = ("CREATED", "RUNNING", "COMPLETED", "CANCELING", "CANCELED", "FAILED", "EXPIRED")
MEDIA_TYPES = {
    ".csv": "text/csv",
    ".jsonl": "application/x-ndjson",
    ".ndjson": "application/x-ndjson",
}
CHUNK_BYTES = 256 * 1024
# SSE comments arrive every 15 s (app/http/sse.py): a minute without a byte is a dead server.
TIMEOUT = httpx.Timeout(30.0, read=60.0)


class Refused(Exception):
    """The server said no (4xx/5xx), or could not be reached: the message says why."""


def add_parser(commands: Any, epilog: str) -> None:
    jobs = commands.add_parser(
        "jobs",
        help="submit, watch, list, cancel and download bulk jobs of a running server",
        description="Bulk jobs over the REST API of a running server (README: Bulk jobs). "
        f"The server: --url, else ${URL_VARIABLE}, else {DEFAULT_URL}; the key: --key, else "
        f"${KEY_VARIABLE}.",
        epilog=epilog,
    )
    actions = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")

    def client_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--url", help=f"the server (default: ${URL_VARIABLE} or {DEFAULT_URL})")
        parser.add_argument(
            "--key", help=f"an API key with the bulk scope (default: ${KEY_VARIABLE})"
        )

    submit = actions.add_parser("submit", help="send a JSONL or CSV file as a job; prints its id")
    submit.add_argument("file", type=Path, help="records, one per line (*.jsonl) or *.csv")
    submit.add_argument("--entity", required=True, choices=ENTITIES)
    submit.add_argument("--operation", required=True, type=str.upper, choices=OPERATIONS)
    submit.add_argument("--atomic", action="store_true", help="every record or none")
    submit.add_argument(
        "--stop-on-error", action="store_true", help="stop at the first failed record"
    )
    submit.add_argument("--validate-only", action="store_true", help="check, write nothing")
    submit.add_argument("--watch", action="store_true", help="then watch it to the end")
    client_options(submit)

    watch = actions.add_parser("watch", help="a progress bar until the job ends")
    watch.add_argument("id")
    client_options(watch)

    listing = actions.add_parser("list", help="your jobs, newest first")
    listing.add_argument("--status", type=str.upper, choices=STATUSES)
    listing.add_argument("--first", type=int, default=20)
    client_options(listing)

    cancel = actions.add_parser("cancel", help="cancel a job (committed records stay)")
    cancel.add_argument("id")
    client_options(cancel)

    download = actions.add_parser("download", help="save one of a job's files")
    download.add_argument("id")
    download.add_argument("kind", choices=KINDS)
    download.add_argument("-o", "--output", type=Path, required=True, help="where to write it")
    client_options(download)


def run(args: argparse.Namespace) -> int:
    try:
        with _client(args) as client:
            command = args.jobs_command
            if command == "submit":
                job = submit(client, args)
                print(job["id"], flush=True)
                _say(f"jobs: job {job['id']} {job['status']}: {job['total']} records")
                return watch(client, job["id"]) if args.watch else 0
            if command == "watch":
                return watch(client, args.id)
            if command == "list":
                return list_jobs(client, args)
            if command == "cancel":
                job = _json(client.post(f"/api/jobs/{args.id}/cancel"))
                _say(f"jobs: job {job['id']} is {job['status']}")
                return 0
            return download(client, args)
    except Refused as error:
        _say(f"jobs: {error}")
        return 2


def _client(args: argparse.Namespace) -> httpx.Client:
    url = args.url or os.environ.get(URL_VARIABLE) or DEFAULT_URL
    key = args.key or os.environ.get(KEY_VARIABLE)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=TIMEOUT)


def submit(client: httpx.Client, args: argparse.Namespace) -> dict[str, Any]:
    path: Path = args.file
    if not path.is_file():
        raise Refused(f"no such file: {path}")
    media_type = MEDIA_TYPES.get(path.suffix.lower())
    if media_type is None:
        raise Refused(f"{path.name}: name the file *.jsonl or *.csv (its format)")
    params = {
        "entity": args.entity,
        "operation": args.operation,
        "atomic": str(args.atomic).lower(),
        "continueOnError": str(not args.stop_on_error).lower(),
        "validateOnly": str(args.validate_only).lower(),
    }
    headers = {"Content-Type": media_type, "Content-Length": str(path.stat().st_size)}
    sent = _send(client, "POST", "/api/jobs", params=params, headers=headers, content=_chunks(path))
    job: dict[str, Any] = _json(sent)
    return job


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as reader:
        while chunk := reader.read(CHUNK_BYTES):
            yield chunk


def watch(client: httpx.Client, job_id: str) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    last: dict[str, Any] | None = None
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(f"job {job_id[:8]}", total=None, counts="")
        for event in progress_events(client, job_id):
            last = event
            rate = event.get("rate")
            bar.update(
                task,
                total=event["total"] or None,
                completed=event["processed"],
                counts=f"{event['processed']:,}/{event['total']:,}  ok {event['succeeded']:,}  "
                f"failed {event['failed']:,}  {f'{rate:,.0f}/s' if rate else ''}",
                description=f"job {job_id[:8]} {event['status'].lower()}",
            )
            if event.get("final"):
                break
    if last is None or not last.get("final"):
        raise Refused(f"the progress stream of job {job_id} ended before its final event")
    job = _json(client.get(f"/api/jobs/{job_id}"))
    return summary(job)


def summary(job: dict[str, Any]) -> int:
    _say(
        f"jobs: job {job['id']} {job['status']}: {job['succeeded']} of {job['total']} records "
        f"written, {job['failed']} failed, {job['total'] - job['processed']} not processed"
    )
    if job.get("errorMessage"):
        _say(f"jobs: {job.get('errorCode')}: {job['errorMessage']}")
    for kind in KINDS:
        url = job.get(f"{kind}Url")
        if url:
            _say(f"  {kind}: {url}  (batchery jobs download {job['id']} {kind} -o FILE)")
    complete = job["status"] == "COMPLETED" and job["failed"] == 0
    return 0 if complete else 1


def progress_events(client: httpx.Client, job_id: str) -> Iterator[dict[str, Any]]:
    """The job's progress events (Server-Sent Events of `GET /api/jobs/{id}/events`)."""
    try:
        with client.stream("GET", f"/api/jobs/{job_id}/events") as response:
            if response.status_code >= 400:
                response.read()
                raise Refused(_problem(response))
            data: list[str] = []
            for line in response.iter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    yield json.loads("\n".join(data))
                    data = []
    except httpx.HTTPError as error:
        raise Refused(f"cannot reach {client.base_url}: {error}") from None


def list_jobs(client: httpx.Client, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"first": args.first}
    if args.status:
        params["status"] = args.status
    jobs = _json(_send(client, "GET", "/api/jobs", params=params))["jobs"]
    for job in jobs:
        print(
            f"{job['id']}  {job['status']:<9}  {job['entity']:<11} {job['operation']:<6} "
            f"{job['processed']:>9}/{job['total']:<9} failed {job['failed']:<7} {job['createdAt']}"
        )
    if not jobs:
        _say("jobs: no jobs")
    return 0


def download(client: httpx.Client, args: argparse.Namespace) -> int:
    output: Path = args.output
    try:
        with client.stream("GET", f"/api/jobs/{args.id}/{args.kind}") as response:
            if response.status_code >= 400:
                response.read()
                raise Refused(_problem(response))
            size = 0
            with output.open("wb") as writer:
                for chunk in response.iter_bytes():
                    writer.write(chunk)
                    size += len(chunk)
    except httpx.HTTPError as error:
        raise Refused(f"cannot reach {client.base_url}: {error}") from None
    _say(f"jobs: wrote {size} bytes to {output}")
    return 0


def _send(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        return client.request(method, url, **kwargs)
    except httpx.HTTPError as error:
        raise Refused(f"cannot reach {client.base_url}: {error}") from None


def _json(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise Refused(_problem(response))
    return response.json()


def _problem(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") or {}
        detail = f"{error.get('code')}: {error.get('message')}"
    except (ValueError, AttributeError):
        detail = response.text[:300]
    return f"{response.request.method} {response.request.url.path}: {response.status_code} {detail}"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
