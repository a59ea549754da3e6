"""Settings from BATCHERY_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings, SettingsError


def test_defaults_match_the_contract():
    settings = Settings.from_env({})
    assert settings.max_batch_operations == 100
    assert settings.max_body_bytes == 100 * 1024 * 1024
    assert settings.max_file_bytes == 20 * 1024 * 1024
    assert settings.max_files == 20
    assert settings.max_operations_bytes == 1024 * 1024
    assert settings.max_query_depth == 15
    assert settings.max_page_size == 1000
    assert settings.max_records_per_batch == 200
    assert settings.batch_mutations == "concurrent"
    assert settings.csrf_required is True


def test_values_are_read_and_converted():
    settings = Settings.from_env(
        {
            "BATCHERY_DATA_DIR": "/tmp/x",
            "BATCHERY_MAX_FILES": "3",
            "BATCHERY_CSRF_REQUIRED": "off",
            "BATCHERY_BATCH_MUTATIONS": "serial",
            "BATCHERY_DATABASE_URL": "postgresql+asyncpg://u@h/db",
            "UNRELATED": "ignored",
        }
    )
    assert settings.data_dir == Path("/tmp/x")
    assert settings.max_files == 3
    assert settings.csrf_required is False
    assert settings.batch_mutations == "serial"
    assert settings.resolved_database_url == "postgresql+asyncpg://u@h/db"


def test_default_database_is_an_sqlite_file_in_the_data_dir(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'batchery.db'}"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BATCHERY_MAX_FILES", "many", "BATCHERY_MAX_FILES must be a whole number, got 'many'"),
        ("BATCHERY_CSRF_REQUIRED", "perhaps", "BATCHERY_CSRF_REQUIRED must be true or false"),
        ("BATCHERY_BATCH_MUTATIONS", "random", "must be one of concurrent, serial"),
    ],
)
def test_bad_values_name_the_variable(variable, value, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({variable: value})
