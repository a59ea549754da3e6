"""`batchery serve` shows our own start-up lines (CORS, JWT, jobs) at its log level."""

from __future__ import annotations

import logging
import logging.config
from collections.abc import Iterator

import pytest

from app.logs import access_log, log_config

NAMES = ("batchery", "uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture
def restored_logging() -> Iterator[None]:
    # dictConfig replaces handlers and stops propagation: put every logger back for caplog's sake.
    saved = {
        name: (logger.handlers[:], logger.level, logger.propagate, logger.disabled)
        for name in NAMES
        for logger in [logging.getLogger(name)]
    }
    yield
    for name, (handlers, level, propagate, disabled) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
        logger.disabled = disabled


@pytest.mark.usefixtures("restored_logging")
def test_info_lines_of_our_loggers_reach_uvicorns_handler(
    capfd: pytest.CaptureFixture[str],
) -> None:
    logging.config.dictConfig(log_config("info"))
    logging.getLogger("batchery.cors").info("CORS: allowed origins https://app.example")
    assert "CORS: allowed origins https://app.example" in capfd.readouterr().err


@pytest.mark.usefixtures("restored_logging")
def test_a_higher_level_keeps_them_quiet(capfd: pytest.CaptureFixture[str]) -> None:
    logging.config.dictConfig(log_config("warning"))
    logging.getLogger("batchery.cors").info("not shown")
    logging.getLogger("batchery.cors").warning("AUTH IS OPEN")
    err = capfd.readouterr().err
    assert "not shown" not in err
    assert "AUTH IS OPEN" in err


@pytest.mark.parametrize(
    ("level", "on"),
    [("trace", True), ("debug", True), ("info", True), ("warning", False), ("ERROR", False)],
)
def test_the_access_log_is_on_where_its_info_lines_are_written(level: str, on: bool) -> None:
    # Its lines are INFO records: above INFO they were dropped anyway, and building each
    # line's arguments is skipped per request.
    assert access_log(level) is on
