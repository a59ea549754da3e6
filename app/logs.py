"""Logging for `batchery serve` and `batchery worker`: uvicorn's configuration, plus our loggers.

uvicorn configures only its own loggers; without this, every `batchery.*` record below WARNING
(the start-up lines saying which CORS origins, JWT issuer or jobs broker are in effect) is dropped
by the root logger's default level.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from uvicorn.config import LOG_LEVELS, LOGGING_CONFIG


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's `log_config` with the `batchery` loggers at `level` on uvicorn's handler."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["batchery"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def access_log(level: str) -> bool:
    """Whether uvicorn's access log is on: only where its lines (at INFO) can be written. Off
    above INFO, uvicorn skips building each line's arguments (client, path) per request, and
    the logs are the same: the lines were dropped by the level anyway."""
    return LOG_LEVELS[level.lower()] <= logging.INFO
