"""`Idempotency-Key` for GraphQL mutations.

The key is read from the HTTP request the transport leaves on `info.context.request` (duck-typed:
anything with `.headers.get`; None in in-process execution means "no key"), so the schema never
imports the HTTP layer. A key is scoped to the operation name and the field's response path: one
document (or one transport batch) may carry several bulk mutations under one header, each stored
on its own as long as their aliases or operation names differ. Keys are per caller.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from graphql import GraphQLError
from strawberry.types import Info

from app.bulk.idempotency import HEADER, IdempotencyError, fingerprint
from app.bulk_settings import idempotency_store

T = TypeVar("T")


def idempotency_key(info: Info) -> str | None:
    headers = getattr(getattr(info.context, "request", None), "headers", None)
    if headers is None:
        return None
    value = headers.get(HEADER)
    return value if isinstance(value, str) else None


def scope(info: Info) -> str:
    """Where a key is used. An authenticated caller's keys are its own: another key sending the
    same Idempotency-Key never gets its stored response."""
    path = ".".join(str(part) for part in info.path.as_list())
    where = f"graphql:{info.operation.name or ''}:{path}"
    caller = info.context.caller
    return f"{caller.id}|{where}" if caller.authenticated else where


async def idempotent(
    info: Info,
    payload: Any,
    work: Callable[[], Awaitable[T]],
    *,
    encode: Callable[[T], str],
    decode: Callable[[str], T],
    keep: Callable[[T], bool] = lambda result: True,
) -> T:
    """`work()`, or the stored result of the same request under the same key.

    `keep(result)` False (e.g. an internal fault) and exceptions forget the key, so a retry runs
    the work again: nothing was written the first time."""
    key = idempotency_key(info)
    if key is None:
        return await work()
    store = idempotency_store(info.context.engine, info.context.settings)
    where = scope(info)
    try:
        stored = await store.claim(key, where, fingerprint([info.field_name, payload]))
    except IdempotencyError as error:
        raise GraphQLError(str(error), extensions={"code": error.code}) from None
    if stored is not None:
        return decode(stored.body)
    try:
        result = await work()
    except BaseException:
        await store.release(key, where)
        raise
    if keep(result):
        await store.complete(key, where, 200, encode(result))
    else:
        await store.release(key, where)
    return result
