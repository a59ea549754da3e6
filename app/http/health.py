"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


READY_TIMEOUT_SECONDS = 3.0


async def readyz(request: Request) -> JSONResponse:
    try:
        await asyncio.wait_for(_ping(request.app.state.engine), READY_TIMEOUT_SECONDS)
    except Exception as error:  # any failure to reach the database means "not ready"
        reason = str(error)[:200] or type(error).__name__
        return JSONResponse({"status": "unavailable", "database": reason}, 503)
    return JSONResponse({"status": "ok", "database": "ok"})


async def _ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
