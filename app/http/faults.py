"""Database faults as HTTP answers: 503 with `Retry-After` and a stable code, never a 500.

The data layer says which failures are faults (app/db/faults.py). GraphQL resolvers' faults are
answered by the executor's masking (`DATABASE_UNAVAILABLE`, `DATABASE_BUSY` in the operation's
errors); the REST façade answers its own (`answers_errors`). The front door
(app/http/front_door.py) answers, with `fault_response`, a fault that escapes any other route (a
photo download, the REST batch's idempotency bookkeeping), so that a client never gets
Starlette's `500 text/plain` for an outage.
"""

from __future__ import annotations

import logging

import orjson
from starlette.responses import Response

from app.db.faults import DatabaseFault

logger = logging.getLogger("batchery.faults")

JSON = "application/json"
REST_PREFIX = "/api/"


def retry_after(fault: DatabaseFault) -> dict[str, str]:
    return {"Retry-After": str(fault.retry_after_seconds)}


def log_fault(fault: DatabaseFault, cause: BaseException) -> None:
    """One line per fault, without a traceback: an outage must not flood the log."""
    logger.warning("%s: %s: %s", fault.code, type(cause).__name__, first_line(cause))


def fault_response(fault: DatabaseFault, *, rest: bool) -> Response:
    """503 in the shape of the API: REST's `{"error": ...}`, GraphQL's `{"errors": [...]}`."""
    if rest:
        body: object = {"error": {"code": fault.code, "message": str(fault)}}
    else:
        body = {"errors": [{"message": str(fault), "extensions": {"code": fault.code}}]}
    return Response(orjson.dumps(body), 503, headers=retry_after(fault), media_type=JSON)


def first_line(error: BaseException) -> str:
    """The gist of an error for a one-line log (SQLAlchemy appends the SQL on later lines)."""
    return next(iter(str(error).splitlines()), "")
