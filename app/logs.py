"""Logging for `batchery serve` and `batchery worker`: uvicorn's configuration, plus our loggers.

uvicorn configures only its own loggers; without this, every `batchery.*` record below WARNING
(the start-up lines saying which CORS origins, JWT issuer or jobs broker are in effect) is dropped
by the root logger's default level.
"""

from __future__ import annotations

import copy
from typing import Any

from uvicorn.config import LOGGING_CONFIG


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's `log_config` with the `batchery` loggers at `level` on uvicorn's handler."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["batchery"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config
