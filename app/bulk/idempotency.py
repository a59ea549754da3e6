"""Idempotent retries: the first response to a request carrying an `Idempotency-Key` is stored in
the database (so every worker sees it) and given again to a retry of the same request.

    stored = await store.claim(key, scope, fingerprint(request_body))
    if stored is not None:            # a retry: answer as the first time, write nothing
        return stored
    try:
        response = await do_the_work()
    except BaseException:
        await store.release(key, scope)   # nothing stored: a retry may run again
        raise
    await store.complete(key, scope, status, body)

Known gap: a worker killed between the work's commit and `complete` leaves the key "running";
after `lock_seconds` a retry takes it over and runs again. A database fault in `complete` or
`release` leaves it so too (logged), rather than failing work that was done.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import Executable, Table, and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.faults import database_fault
from app.db.models import IdempotencyKey, utcnow
from app.db.transactions import write_connection

logger = logging.getLogger("batchery.idempotency")

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
RUNNING, DONE = "running", "done"

keys = cast(Table, IdempotencyKey.__table__)


class IdempotencyError(Exception):
    code = "IDEMPOTENCY_ERROR"
    status = 400


class InvalidKey(IdempotencyError):
    code = "INVALID_IDEMPOTENCY_KEY"
    status = 400


class KeyReused(IdempotencyError):
    code = "IDEMPOTENCY_KEY_REUSED"
    status = 422


class KeyInProgress(IdempotencyError):
    code = "IDEMPOTENCY_KEY_IN_PROGRESS"
    status = 409


@dataclass(frozen=True, slots=True)
class Stored:
    status: int
    body: str


def check_key(key: str) -> str:
    if not 0 < len(key) <= MAX_KEY_LENGTH or not all(" " <= char <= "~" for char in key):
        raise InvalidKey(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters "
            "(a UUID is a good choice)"
        )
    return key


def fingerprint(payload: Any) -> str:
    """A hash of a request's meaning: the same JSON-able payload, whatever its key order."""
    encoded = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS, default=_jsonable)
    return hashlib.sha256(encoded).hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot fingerprint {type(value).__name__}")


class IdempotencyStore:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        ttl_seconds: int = 24 * 3600,
        lock_seconds: int = 300,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.ttl = timedelta(seconds=ttl_seconds)
        self.lock = timedelta(seconds=lock_seconds)
        self.clock = clock

    async def claim(self, key: str, scope: str, request_fingerprint: str) -> Stored | None:
        """None when the caller now holds the key and must do the work; the stored response when
        the same request was answered before. KeyReused / KeyInProgress otherwise."""
        check_key(key)
        now = self.clock()
        this = and_(keys.c.key == key, keys.c.scope == scope)
        abandoned = and_(this, keys.c.state == RUNNING, keys.c.locked_until < now)
        async with write_connection(self.engine) as conn, conn.begin():
            # Expired keys of any client go here too: housekeeping at the cost of one statement.
            await conn.execute(delete(keys).where(or_(keys.c.expires_at < now, abandoned)))
            dialect_insert = (
                postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            )
            claimed = await conn.execute(
                dialect_insert(keys)
                .values(
                    key=key,
                    scope=scope,
                    fingerprint=request_fingerprint,
                    state=RUNNING,
                    created_at=now,
                    locked_until=now + self.lock,
                    expires_at=now + self.ttl,
                )
                .on_conflict_do_nothing()
                .returning(keys.c.key)
            )
            if claimed.first() is not None:
                return None
            row = (await conn.execute(select(keys).where(this))).one()
        if row.fingerprint != request_fingerprint:
            raise KeyReused(
                f"this {HEADER} was used with a different request; use a new key for a new request"
            )
        if row.state == RUNNING:
            raise KeyInProgress(
                f"a request with this {HEADER} is still being processed; retry when it is done"
            )
        return Stored(row.status, row.response)

    async def complete(self, key: str, scope: str, status: int, body: str) -> None:
        statement = (
            update(keys)
            .where(keys.c.key == key, keys.c.scope == scope, keys.c.state == RUNNING)
            .values(state=DONE, status=status, response=body)
        )
        await self._bookkeeping(statement, key)

    async def release(self, key: str, scope: str) -> None:
        statement = delete(keys).where(
            keys.c.key == key, keys.c.scope == scope, keys.c.state == RUNNING
        )
        await self._bookkeeping(statement, key)

    async def _bookkeeping(self, statement: Executable, key: str) -> None:
        """Runs after the work: a database fault here must not turn work that was done (or an
        error being raised) into a "nothing was written" fault. The key then stays "running"
        until `lock_seconds` pass, when a retry may take it over."""
        try:
            async with write_connection(self.engine) as conn, conn.begin():
                await conn.execute(statement)
        except Exception as error:
            fault = database_fault(error)
            if fault is None:
                raise
            logger.warning("%s key %r left running: %s", HEADER, key, fault.code)
