"""Settings from BATCHERY_* variables."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest

from app.settings import Above, PositiveFloat, Settings, SettingsError, hide_password


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


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BATCHERY_MAX_PAGE_SIZE", "-1", "BATCHERY_MAX_PAGE_SIZE must be at least 1, got -1"),
        ("BATCHERY_MAX_PAGE_SIZE", "0", "BATCHERY_MAX_PAGE_SIZE must be at least 1, got 0"),
        ("BATCHERY_LOADER_MAX_BATCH_SIZE", "0", "must be at least 1, got 0"),
        ("BATCHERY_LOADER_MAX_BATCH_SIZE", "-5", "must be at least 1, got -5"),
        ("BATCHERY_LOADER_MAX_BATCH_SIZE", "40000", "must be at most 32766, got 40000"),
        ("BATCHERY_BATCH_CONCURRENCY", "-1", "BATCHERY_BATCH_CONCURRENCY must be at least 0"),
        (
            "BATCHERY_MAX_RECORDS_PER_BATCH",
            "0",
            "BATCHERY_MAX_RECORDS_PER_BATCH must be at least 1",
        ),
        ("BATCHERY_MAX_BODY_BYTES", "0", "BATCHERY_MAX_BODY_BYTES must be at least 1"),
        # 0 made every batch, even of 1, "The batch has 1 operations, more than this server runs".
        ("BATCHERY_MAX_BATCH_OPERATIONS", "0", "BATCHERY_MAX_BATCH_OPERATIONS must be at least 1"),
        (
            "BATCHERY_LOG_LEVEL",
            "loud",
            "BATCHERY_LOG_LEVEL must be one of critical, error, warning, info, debug, trace, "
            "got 'loud'",
        ),
    ],
)
def test_values_out_of_range_are_refused_in_one_line_naming_variable_value_and_range(
    variable, value, message
):
    with pytest.raises(SettingsError, match=re.escape(message)) as refused:
        Settings.from_env({variable: value})
    assert "\n" not in str(refused.value)


def test_settings_built_in_code_are_checked_too():
    with pytest.raises(SettingsError, match="BATCHERY_MAX_PAGE_SIZE must be at least 1, got -1"):
        Settings(max_page_size=-1)
    with pytest.raises(SettingsError, match="BATCHERY_MAX_FILES must be a number, got '3'"):
        Settings(max_files="3")  # type: ignore[arg-type]


def test_log_level_is_read_in_any_case():
    assert Settings.from_env({"BATCHERY_LOG_LEVEL": "DEBUG"}).log_level == "debug"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("garbage", "BATCHERY_DATABASE_URL must be a URL like sqlite+aiosqlite:///PATH or "),
        (
            "postgresql://app:s3cret@db:5432/batchery",
            "BATCHERY_DATABASE_URL needs an async driver: use postgresql+asyncpg://, "
            "got 'postgresql://app:***@db:5432/batchery'",
        ),
        ("sqlite:///data/x.db", "needs an async driver: use sqlite+aiosqlite:///, got"),
        ("mysql+aiomysql://u@h/db", "'mysql' databases are not supported"),
        ("postgresql+nosuchdriver://u@h/db", "BATCHERY_DATABASE_URL must be a URL like"),
    ],
)
def test_database_urls_are_parsed_and_need_an_installed_async_driver(url, message):
    with pytest.raises(SettingsError, match=re.escape(message)) as refused:
        Settings.from_env({"BATCHERY_DATABASE_URL": url})
    assert "s3cret" not in str(refused.value)


def test_supported_database_urls_are_accepted():
    for url in ("sqlite+aiosqlite:///data/x.db", "postgresql+asyncpg://u:p@h:5432/db", ""):
        assert Settings.from_env({"BATCHERY_DATABASE_URL": url}).database_url == url


def test_a_bound_is_declared_in_the_annotation_alone():
    # The way other modules add a setting: one annotated field, checked like every other.
    @dataclasses.dataclass(frozen=True)
    class Example:
        timeout: PositiveFloat = 1.0

    hint = typing.get_type_hints(Example, include_extras=True)["timeout"]
    (bound,) = typing.get_args(hint)[1:]
    assert isinstance(bound, Above)
    with pytest.raises(SettingsError, match="BATCHERY_TIMEOUT must be more than 0, got 0"):
        bound.check("BATCHERY_TIMEOUT", 0)
    bound.check("BATCHERY_TIMEOUT", 0.5)


def test_every_numeric_setting_declares_a_bound():
    hints = typing.get_type_hints(Settings, include_extras=True)
    unbounded = [
        name
        for name, hint in hints.items()
        if typing.get_origin(hint) is not typing.Annotated and hint in (int, float)
    ]
    assert unbounded == []


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+asyncpg://app:s3cret@db:5432/x", "postgresql+asyncpg://app:***@db:5432/x"),
        ("postgresql+asyncpg://app:s3@cret@db/x", "postgresql+asyncpg://app:***@db/x"),
        ("postgresql+asyncpg://app@db/x", "postgresql+asyncpg://app@db/x"),
        ("sqlite+aiosqlite:////tmp/a:b@c.db", "sqlite+aiosqlite:////tmp/a:b@c.db"),
    ],
)
def test_passwords_are_hidden_when_a_url_is_shown(url, shown):
    assert hide_password(url) == shown


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:6379", "redis://", "redis://host:99999", "127.0.0.1:6379"]
)
def test_a_jobs_broker_that_is_no_redis_url_stops_the_start_naming_the_setting(url):
    with pytest.raises(SettingsError, match=r"^BATCHERY_JOBS_BROKER must be empty .* or a Redis"):
        Settings.from_env({"BATCHERY_JOBS_BROKER": url})


def test_a_jobs_broker_url_shown_in_a_refusal_hides_its_password():
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"BATCHERY_JOBS_BROKER": "http://user:secret@host/"})
    assert "secret" not in str(refused.value)


def test_jobs_run_embedded_by_default_with_files_in_the_data_dir(tmp_path):
    from app.jobs_settings import jobs_config

    config = jobs_config(Settings(data_dir=tmp_path))
    assert config.embedded
    assert config.jobs_dir == tmp_path / "jobs"
    redis = jobs_config(
        Settings.from_env(
            {"BATCHERY_JOBS_BROKER": "redis://127.0.0.1:6379/2", "BATCHERY_JOBS_DIR": "/srv/j"}
        )
    )
    assert not redis.embedded
    assert redis.broker_url == "redis://127.0.0.1:6379/2"
    assert redis.jobs_dir == Path("/srv/j")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BATCHERY_JOBS_LEASE_SECONDS", "0"),
        ("BATCHERY_JOBS_WORKER_CONCURRENCY", "0"),
        ("BATCHERY_JOBS_WORKER_CONCURRENCY", "65"),
        ("BATCHERY_JOBS_MAX_RECORDS", "0"),
        ("BATCHERY_JOBS_PROGRESS_INTERVAL_SECONDS", "0"),
    ],
)
def test_jobs_settings_out_of_range_are_refused(variable, value):
    with pytest.raises(SettingsError, match=f"^{variable} must be"):
        Settings.from_env({variable: value})
