"""API keys managed over the API, for `admin` callers: what `batchery keys` does from the shell.

`apiKeys` lists them (never the key: only its hash is stored), `createApiKey` returns the new key
once, `revokeApiKey` refuses it from the next request on, on every worker (keys are read from the
database on every request: app/db/keys.py). Each mutation is an operation like any other, so the
audit trail records who created or revoked a key, in which request.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import Enum

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from app.db import keys
from schema.access import ADMIN, BULK, READ, WRITE, requires
from schema.directives import DATABASE
from schema.types import page_size


@strawberry.enum(description="What a key may do (the `@requiresScopes` names).")
class ApiKeyScope(Enum):
    READ = READ
    WRITE = WRITE
    BULK = BULK
    ADMIN = ADMIN


@strawberry.type(description="An API key's record: never the key itself.")
class ApiKey:
    id: strawberry.ID = strawberry.field(
        description="The non-secret part after `bch_`; the audit trail names it `key:<id>`."
    )
    name: str
    scopes: list[ApiKeyScope]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @strawberry.field(description="Neither revoked nor expired.")
    def active(self) -> bool:
        now = datetime.now(self.created_at.tzinfo)
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @classmethod
    def from_info(cls, info: keys.KeyInfo) -> ApiKey:
        return cls(
            id=strawberry.ID(info.id),
            name=info.name,
            scopes=[ApiKeyScope(scope) for scope in info.scopes if scope in _VALUES],
            created_at=info.created_at,
            expires_at=info.expires_at,
            revoked_at=info.revoked_at,
        )


_VALUES = frozenset(scope.value for scope in ApiKeyScope)


@strawberry.type(description="A new key: `key` is shown this once and stored nowhere.")
class CreatedApiKey:
    key: str = strawberry.field(description="Send it as `Authorization: Bearer <key>`.")
    api_key: ApiKey


def _bad_input(message: str, field: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT", "field": field})


async def api_keys(info: Info, first: int | None) -> list[ApiKey]:
    limit = page_size(info, first, "first")
    return [ApiKey.from_info(found) for found in await keys.list_keys(info.context.engine, limit)]


@strawberry.type
class KeyMutation:
    @strawberry.mutation(
        description="Makes an API key; the answer's `key` is the only time it is shown. "
        "Needs the `admin` scope.",
        directives=[*requires(ADMIN), DATABASE],
    )
    async def create_api_key(
        self,
        info: Info,
        name: str,
        scopes: list[ApiKeyScope],
        expires_in_days: int | None = None,
    ) -> CreatedApiKey:
        chosen = [scope.value for scope in scopes]
        problem = keys.check_new_key(name, chosen, expires_in_days)
        if problem is not None:
            raise _bad_input(problem.message, problem.field)
        expires_in = timedelta(days=expires_in_days) if expires_in_days is not None else None
        new = await keys.create_key(
            info.context.engine, name.strip(), list(dict.fromkeys(chosen)), expires_in=expires_in
        )
        return CreatedApiKey(key=new.key, api_key=ApiKey.from_info(new.info))

    @strawberry.mutation(
        description="Refuses the key from the next request on, on every server of this "
        "database. Revoking a revoked key keeps its first date. Needs the `admin` scope.",
        directives=[*requires(ADMIN), DATABASE],
    )
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> ApiKey:
        revoked = await keys.revoke_key(info.context.engine, str(id))
        if revoked is None:
            raise GraphQLError(
                f"There is no API key with id {str(id)[:40]!r} (see the apiKeys query).",
                extensions={"code": "NOT_FOUND", "field": "id"},
            )
        return ApiKey.from_info(revoked)
