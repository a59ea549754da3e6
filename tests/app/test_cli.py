"""The `batchery` command, run in-process."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from app.cli import main


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
    with pytest.raises(SystemExit) as exit_info:
        main(["schema"])
    assert exit_info.value.code == 2
    assert "BATCHERY_MAX_FILES must be a whole number" in capsys.readouterr().err


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
