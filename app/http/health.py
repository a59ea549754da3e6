"""Liveness and readiness probes."""

from __future__ import annotations

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    try:
        async with request.app.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as error:  # any failure to reach the database means "not ready"
        return JSONResponse({"status": "unavailable", "database": str(error)[:200]}, 503)
    return JSONResponse({"status": "ok", "database": "ok"})
