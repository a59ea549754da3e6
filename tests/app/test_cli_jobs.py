"""`batchery jobs ...` against a real server (uvicorn on a free port, jobs embedded): submit and
watch to the end, list, download exactly the failed lines, cancel, and refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from app.cli import main
from app.db import keys
from app.db.engine import create_engine
from tests.app.http.jobs_kit import bakeries_jsonl, lines_of
from tests.live.server import LiveServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("cli-jobs")) as live:
        # Answered once the server has started (and made its tables).
        assert httpx.get(live.url + "/healthz").status_code == 200
        yield live


def key_with(server: LiveServer, *scopes: str) -> str:
    async def create() -> str:
        engine = create_engine(server.settings.resolved_database_url)
        try:
            return (await keys.create_key(engine, "cli", list(scopes))).key
        finally:
            await engine.dispose()

    return asyncio.run(create())


def jobs(server: LiveServer, key: str, *arguments: str) -> int:
    return main(["jobs", *arguments, "--url", server.url, "--key", key])


def test_submit_and_watch_ends_with_a_summary_and_the_download_urls(server, tmp_path, capsys):
    key = key_with(server, "bulk")
    records = tmp_path / "bakeries.jsonl"
    bad = frozenset({3, 4})
    records.write_bytes(bakeries_jsonl(40, bad))
    status = jobs(
        server,
        key,
        "submit",
        str(records),
        "--entity",
        "bakeries",
        "--operation",
        "create",
        "--watch",
    )
    out, err = capsys.readouterr()
    job_id = out.strip()
    assert len(job_id) == 32
    assert status == 1  # some records failed
    assert f"job {job_id} COMPLETED: 38 of 40 records written, 2 failed, 0 not processed" in err
    assert f"/api/jobs/{job_id}/failed" in err

    failed = tmp_path / "failed.jsonl"
    assert jobs(server, key, "download", job_id, "failed", "-o", str(failed)) == 0
    assert failed.read_bytes().splitlines() == lines_of(records.read_bytes(), bad)

    assert jobs(server, key, "list") == 0
    listed = capsys.readouterr().out
    assert job_id in listed and "COMPLETED" in listed

    assert jobs(server, key, "watch", job_id) == 1  # a finished job: its final event at once
    assert "38 of 40 records written" in capsys.readouterr().err


def test_a_clean_job_exits_0_and_cancel_of_a_finished_job_says_its_status(server, tmp_path, capsys):
    key = key_with(server, "bulk")
    records = tmp_path / "bakeries.csv"
    records.write_text("name,region\nCLI bakery,SOUTH_WEST\n")
    assert (
        jobs(
            server,
            key,
            "submit",
            str(records),
            "--entity",
            "bakeries",
            "--operation",
            "CREATE",
            "--watch",
        )
        == 0
    )
    job_id = capsys.readouterr().out.strip()
    assert jobs(server, key, "cancel", job_id) == 0
    assert f"job {job_id} is COMPLETED" in capsys.readouterr().err


def test_refusals_exit_2_with_the_servers_reason(server, tmp_path, capsys):
    reader = key_with(server, "read")
    records = tmp_path / "bakeries.jsonl"
    records.write_bytes(bakeries_jsonl(1))
    arguments = ("submit", str(records), "--entity", "bakeries", "--operation", "CREATE")
    assert jobs(server, reader, *arguments) == 2
    assert "403 FORBIDDEN" in capsys.readouterr().err
    assert jobs(server, key_with(server, "bulk"), "watch", "0" * 32) == 2
    assert "404 NOT_FOUND" in capsys.readouterr().err
    assert main(["jobs", "list", "--url", "http://127.0.0.1:9"]) == 2
    assert "cannot reach" in capsys.readouterr().err


def test_a_file_without_a_known_suffix_is_refused_before_sending(server, tmp_path, capsys):
    records = tmp_path / "bakeries.txt"
    records.write_text("{}\n")
    status = jobs(
        server, "unused", "submit", str(records), "--entity", "bakeries", "--operation", "CREATE"
    )
    assert status == 2
    assert "*.jsonl or *.csv" in capsys.readouterr().err


def test_jobs_commands_ignore_this_machines_settings(monkeypatch, server, capsys):
    # A client of a server: a setting that would stop `batchery serve` is not its business.
    monkeypatch.setenv("BATCHERY_MAX_PAGE_SIZE", "not a number")
    assert jobs(server, key_with(server, "bulk"), "list") == 0


def test_url_and_key_come_from_the_environment(monkeypatch, server, capsys):
    monkeypatch.setenv("BATCHERY_API_URL", server.url)
    monkeypatch.setenv("BATCHERY_API_KEY", key_with(server, "read"))
    assert main(["jobs", "list"]) == 2  # the key from the environment was sent: 403
    assert "FORBIDDEN" in capsys.readouterr().err
