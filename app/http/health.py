"""Liveness and readiness probes.

`/healthz` answers while the process runs; `/readyz` also asks the database (one `SELECT 1`, not
counted in `batchery_db_statements_total`) and says 503 without details when it cannot.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse

from app.db.faults import DatabaseUnavailable
from app.db.statements import UNCOUNTED
from app.http.faults import first_line

logger = logging.getLogger("batchery.health")


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


READY_TIMEOUT_SECONDS = 3.0


async def readyz(request: Request) -> JSONResponse:
    try:
        await asyncio.wait_for(_ping(request.app.state.engine), READY_TIMEOUT_SECONDS)
    except Exception as error:  # any failure to reach the database means "not ready"
        # The cause goes to the log, not to whoever can reach the probe (no SQL, no URLs).
        logger.warning("not ready: %s: %s", type(error).__name__, first_line(error))
        return JSONResponse(
            {"status": "unavailable", "database": "unavailable"},
            503,
            headers={"Retry-After": str(DatabaseUnavailable.retry_after_seconds)},
        )
    return JSONResponse({"status": "ok", "database": "ok"})


async def _ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        # A probe is not a request: keep it out of batchery_db_statements_total.
        await conn.execute(text("SELECT 1"), execution_options={UNCOUNTED: True})
