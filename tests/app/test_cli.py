"""The `batchery` command, run in-process."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys

import pytest
from sqlalchemy.engine import make_url

from app.cli import main
from tests.conftest import POSTGRES_UP, POSTGRES_URL


def count(db, table):
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_schema_prints_the_sdl(capsys):
    assert main(["schema"]) == 0
    out = capsys.readouterr().out
    assert "bakeries(region: Region, first: Int = 100): [Bakery!]!" in out
    assert "orders(limitTo: Int = 15): [CakeOrder!]!" in out


def test_seed_fills_an_empty_database_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BATCHERY_DATA_DIR", str(tmp_path))
    db = tmp_path / "batchery.db"
    assert main(["seed", "--bakeries", "7", "--orders-per-bakery", "3"]) == 0
    assert count(db, "bakeries") == 7 and count(db, "cake_orders") == 21
    # Regions cover all five, some bakeries have no manager only when there are 7+.
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(DISTINCT region) FROM bakeries").fetchone()[0] == 5
    assert main(["seed", "--if-empty"]) == 0
    assert "nothing to do" in capsys.readouterr().err
    assert main(["seed"]) == 1
    assert "--reset" in capsys.readouterr().err
    assert main(["seed", "--reset", "--bakeries", "2", "--orders-per-bakery", "1"]) == 0
    assert count(db, "bakeries") == 2 and count(db, "cake_orders") == 2


def test_a_bad_setting_is_reported_not_raised(monkeypatch, capsys):
    monkeypatch.setenv("BATCHERY_MAX_FILES", "lots")
    assert main(["schema"]) == 2
    assert capsys.readouterr().err == (
        "batchery: BATCHERY_MAX_FILES must be a whole number, got 'lots'\n"
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BATCHERY_LOG_LEVEL", "loud", "BATCHERY_LOG_LEVEL must be one of critical, error"),
        ("BATCHERY_MAX_PAGE_SIZE", "-1", "BATCHERY_MAX_PAGE_SIZE must be at least 1, got -1"),
        ("BATCHERY_DATABASE_URL", "garbage", "BATCHERY_DATABASE_URL must be a URL like"),
        (
            "BATCHERY_DATABASE_URL",
            "postgresql://u:secret@127.0.0.1/db",
            "use postgresql+asyncpg://, got 'postgresql://u:***@127.0.0.1/db'",
        ),
        ("BATCHERY_JWT_ALGORITHMS", "HS256", "BATCHERY_JWT_ALGORITHMS: HS256 (a symmetric key)"),
        # Checked across settings when the app is built: still one line, before starting.
        ("BATCHERY_JWT_ISSUER", "https://idp/", "BATCHERY_JWT_ISSUER is set but no key source"),
        ("BATCHERY_JWT_JWKS_FILE", "/no/such.json", "BATCHERY_JWT_JWKS_FILE: cannot use"),
    ],
)
def test_serve_refuses_a_bad_setting_in_one_line_before_starting(
    monkeypatch, capsys, variable, value, message
):
    monkeypatch.setenv(variable, value)
    if variable == "BATCHERY_JWT_JWKS_FILE":
        monkeypatch.setenv("BATCHERY_JWT_ISSUER", "https://idp/")
        monkeypatch.setenv("BATCHERY_JWT_AUDIENCE", "batchery")
    assert main(["serve", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err and "secret" not in err


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["seed"]])
def test_a_database_that_refuses_connections_is_one_line_naming_it(monkeypatch, capsys, command):
    port = closed_port()
    url = f"postgresql+asyncpg://app:secret@127.0.0.1:{port}/batchery"
    monkeypatch.setenv("BATCHERY_DATABASE_URL", url)
    assert main(command) == 1
    shown = f"postgresql+asyncpg://app:***@127.0.0.1:{port}/batchery"
    assert capsys.readouterr().err.splitlines() == [
        f"{command[0]}: database {shown} (BATCHERY_DATABASE_URL)",
        f"{command[0]}: cannot use the database {shown}: connection refused "
        f"([Errno 111] Connect call failed ('127.0.0.1', {port}))",
    ]


@pytest.mark.skipif(not POSTGRES_UP, reason="PostgreSQL not reachable")
def test_a_database_that_does_not_exist_is_one_line_naming_it(monkeypatch, capsys):
    url = make_url(POSTGRES_URL).set(database="batchery_no_such_database")
    monkeypatch.setenv("BATCHERY_DATABASE_URL", url.render_as_string(hide_password=False))
    assert main(["seed"]) == 1
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("seed: cannot use the database postgresql+asyncpg://")
    assert last.endswith(
        '/batchery_no_such_database: database "batchery_no_such_database" does not exist'
    )


def test_a_file_that_is_not_a_database_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    (tmp_path / "batchery.db").write_text("not a database, just text " * 100)
    monkeypatch.setenv("BATCHERY_DATA_DIR", str(tmp_path))
    assert main(["serve", "--port", "1"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        f"serve: cannot use the database sqlite+aiosqlite:///{tmp_path / 'batchery.db'}: "
        "file is not a database"
    )
    assert "Traceback" not in err


def test_every_database_command_says_which_database_it_uses(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BATCHERY_DATA_DIR", raising=False)
    monkeypatch.delenv("BATCHERY_DATABASE_URL", raising=False)
    assert main(["seed", "--bakeries", "1", "--orders-per-bakery", "1"]) == 0
    line = (
        f"database sqlite+aiosqlite:///{tmp_path / 'data' / 'batchery.db'} (batchery.db in "
        f"BATCHERY_DATA_DIR=data, relative to the current directory {tmp_path})"
    )
    assert capsys.readouterr().err.splitlines()[0] == f"seed: {line}"
    rows = tmp_path / "rows.csv"
    rows.write_text("name,region\nCLI,CENTRAL\n")
    assert main(["import", str(rows), "--entity", "bakeries", "--no-progress"]) == 0
    assert capsys.readouterr().err.splitlines()[0] == f"import: {line}"


def test_import_refuses_a_database_that_was_never_created(tmp_path, monkeypatch, capsys):
    # The trap: run from another directory, the relative default data dir is a new database.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BATCHERY_DATA_DIR", raising=False)
    monkeypatch.delenv("BATCHERY_DATABASE_URL", raising=False)
    rows = tmp_path / "orders.csv"
    rows.write_text("bakeryId,writtenPhrase\n1,Hello\n")
    assert main(["import", str(rows), "--entity", "cake-orders", "--no-progress"]) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert "has not been created: run 'batchery seed' for demo data, pass --create" in last
    assert not (tmp_path / "data").exists(), "the refusal left an empty database behind"

    # --create makes the tables; cake orders still need bakeries, and it says so up front.
    assert main(["import", str(rows), "--entity", "cake-orders", "--create"]) == 2
    assert "has no bakeries, so every cake order would be refused" in capsys.readouterr().err
    assert count(tmp_path / "data" / "batchery.db", "cake_orders") == 0

    bakeries = tmp_path / "bakeries.csv"
    bakeries.write_text("name,region\nFirst,CENTRAL\n")
    assert main(["import", str(bakeries), "--entity", "bakeries", "--no-progress"]) == 0
    assert main(["import", str(rows), "--entity", "cake-orders", "--no-progress"]) == 0
    assert count(tmp_path / "data" / "batchery.db", "cake_orders") == 1


def test_help_says_where_the_database_is_and_which_fields_import_takes(capsys):
    from app.bulk.entities import ENTITIES

    with pytest.raises(SystemExit):
        main(["--help"])
    assert "BATCHERY_DATA_DIR" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["seed", "--help"])
    assert "(default: 50)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    out = capsys.readouterr().out
    for entity in ENTITIES.values():
        assert f"  {entity.name + ':':13} {entity.field_names}\n" in out


def test_schema_into_a_closed_pipe_prints_no_traceback():
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written, as after `| head -1`
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "app.cli", "schema"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert completed.returncode == 1
    assert completed.stderr == ""


def test_a_worker_without_a_shared_queue_says_so_in_one_line(capsys):
    assert main(["worker"]) == 2
    err = capsys.readouterr().err
    assert "BATCHERY_JOBS_BROKER is empty" in err and err.count("\n") == 1


def test_a_worker_with_a_bad_broker_url_names_the_setting(monkeypatch, capsys):
    monkeypatch.setenv("BATCHERY_JOBS_BROKER", "amqp://127.0.0.1")
    assert main(["worker"]) == 2
    assert capsys.readouterr().err.startswith("batchery: BATCHERY_JOBS_BROKER must be empty")
