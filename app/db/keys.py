"""API keys: made, listed, revoked, and checked, through the database only.

A key reads `bch_<id>_<secret>`: `id` (12 hex characters) is not secret and finds the row; only the
whole key's sha256 is stored (the key carries 256 random bits, so a slow password hash would add
nothing). Checking a presented key is one read by primary key, then a constant-time comparison
(`hmac.compare_digest`) of hashes, made even when no row has that id, so the time taken does not
tell a known id from an unknown one. There is no cache: a key revoked by any process is refused by
every process from the next request on.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, cast

from sqlalchemy import Row, Table, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.models import ApiKey, utcnow

PREFIX = "bch"
ID_HEX_CHARS = 12
# Compared against when no row has the presented id, so that path costs what a real one does.
_NO_SUCH_HASH = hashlib.sha256(b"no such key").hexdigest()
keys_table = cast(Table, ApiKey.__table__)
_c = keys_table.c


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewKey:
    info: KeyInfo
    # The key itself: shown once, stored nowhere.
    key: str


class KeyProblem(Enum):
    """Why a presented key is refused (each answered 401)."""

    MALFORMED = "is not a Batchery API key (bch_<id>_<secret>)"
    UNKNOWN = "is not a known API key"
    REVOKED = "has been revoked"
    EXPIRED = "has expired"


# The `api_keys.name` column's length, and the longest life a key made over the API may get.
MAX_NAME_CHARS = 200
MAX_EXPIRES_IN_DAYS = 3650


@dataclass(frozen=True, slots=True)
class KeyRequestProblem:
    field: str
    message: str


def check_new_key(
    name: str, scopes: Sequence[str], expires_in_days: int | None
) -> KeyRequestProblem | None:
    """What is wrong with a request for a new key (over the API), or None."""
    if not name.strip() or len(name.strip()) > MAX_NAME_CHARS:
        return KeyRequestProblem("name", f"name must be 1 to {MAX_NAME_CHARS} characters")
    if not name.isprintable():
        # PostgreSQL's text refuses NUL (the insert failed: a 500); a line break forges lines
        # of `batchery keys list`.
        return KeyRequestProblem(
            "name", "name must be printable text (no NUL, line break or other control character)"
        )
    if not scopes:
        return KeyRequestProblem("scopes", "scopes must name at least one scope")
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRES_IN_DAYS:
        return KeyRequestProblem(
            "expiresInDays",
            f"expiresInDays must be 1 to {MAX_EXPIRES_IN_DAYS}, got {expires_in_days}",
        )
    return None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _info(row: Row[Any]) -> KeyInfo:
    return KeyInfo(
        row.id, row.name, tuple(row.scopes.split()), row.created_at, row.expires_at, row.revoked_at
    )


async def create_key(
    engine: AsyncEngine, name: str, scopes: Sequence[str], *, expires_in: timedelta | None = None
) -> NewKey:
    key_id = secrets.token_hex(ID_HEX_CHARS // 2)
    key = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    now = utcnow()
    expires_at = now + expires_in if expires_in is not None else None
    values: dict[str, Any] = {
        "id": key_id,
        "name": name,
        "key_hash": hash_key(key),
        "scopes": " ".join(scopes),
        "created_at": now,
        "expires_at": expires_at,
        "revoked_at": None,
    }
    async with engine.begin() as conn:
        await conn.execute(keys_table.insert().values(**values))
    info = KeyInfo(key_id, name, tuple(scopes), now, expires_at, None)
    return NewKey(info, key)


async def list_keys(engine: AsyncEngine, limit: int | None = None) -> list[KeyInfo]:
    """Oldest first; the first `limit` when given."""
    statement = select(*_c).order_by(_c.created_at, _c.id)
    if limit is not None:
        statement = statement.limit(limit)
    async with engine.connect() as conn:
        return [_info(row) for row in (await conn.execute(statement)).all()]


async def revoke_key(engine: AsyncEngine, key_id: str) -> KeyInfo | None:
    """Revoke at once (a second revoke keeps the first date); None when there is no such key."""
    async with engine.begin() as conn:
        await conn.execute(
            update(keys_table)
            .where(_c.id == key_id, _c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        row = (await conn.execute(select(*_c).where(_c.id == key_id))).first()
    return _info(row) if row is not None else None


def key_id_of(key: str) -> str | None:
    """The id part of a well-formed key, else None."""
    prefix, _, rest = key.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or len(key_id) != ID_HEX_CHARS or not secret:
        return None
    if not all(char in "0123456789abcdef" for char in key_id):
        return None
    return key_id


async def check_key(engine: AsyncEngine, key: str) -> KeyInfo | KeyProblem:
    """The key's record when it may be used now, else why not."""
    key_id = key_id_of(key)
    if key_id is None:
        return KeyProblem.MALFORMED
    async with engine.connect() as conn:
        row = (await conn.execute(select(*_c).where(_c.id == key_id))).first()
    stored = row.key_hash if row is not None else _NO_SUCH_HASH
    matches = hmac.compare_digest(hash_key(key), stored)
    if row is None or not matches:
        return KeyProblem.UNKNOWN
    if row.revoked_at is not None:
        return KeyProblem.REVOKED
    if row.expires_at is not None and row.expires_at <= utcnow():
        return KeyProblem.EXPIRED
    return _info(row)
