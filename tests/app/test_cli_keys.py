"""`batchery keys`: a key printed once and stored as a hash, listed without it, revoked by id."""

from __future__ import annotations

import sqlite3

import pytest

from app import cli_keys
from app.cli import main
from app.db.keys import hash_key
from schema.access import SCOPES


def test_the_cli_knows_the_schemas_scopes():
    assert cli_keys.SCOPES == SCOPES


def test_a_key_is_created_listed_and_revoked(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BATCHERY_DATA_DIR", str(tmp_path))
    assert main(["keys", "create", "--name", "ci loader", "--scopes", "read,bulk"]) == 0
    captured = capsys.readouterr()
    key = captured.out.strip()
    assert key.startswith("bch_") and "\n" not in key
    key_id = key.split("_")[1]
    assert f"created key {key_id}" in captured.err and "shown once" in captured.err

    with sqlite3.connect(tmp_path / "batchery.db") as conn:
        rows = conn.execute("SELECT * FROM api_keys").fetchall()
    assert len(rows) == 1
    assert key not in repr(rows) and key.split("_", 2)[2] not in repr(rows)
    assert hash_key(key) in rows[0]

    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert key_id in listing and "read,bulk" in listing and "active" in listing
    assert key.split("_", 2)[2] not in listing

    assert main(["keys", "revoke", key_id]) == 0
    assert "revoked" in capsys.readouterr().err
    assert main(["keys", "list"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["keys", "revoke", "000000000000"]) == 1
    assert "no key with id" in capsys.readouterr().err


def test_unknown_scopes_are_refused_naming_the_known_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BATCHERY_DATA_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as exit_info:
        main(["keys", "create", "--name", "x", "--scopes", "read,root"])
    assert exit_info.value.code == 2
    assert "read, write, bulk, admin" in capsys.readouterr().err
