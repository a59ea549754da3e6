"""Running GraphQL in-process against a real database, with the statements it cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.statements import count_statements
from app.settings import Settings
from schema import schema
from schema.context import Context
from schema.execution import Executor, GraphQLRequest


def without_cost(body: Any) -> Any:
    """A `/graphql` response (or batch of them) without `extensions.cost`, which every operation
    carries (tests/app/http/test_cost_limits.py checks it): for tests about something else."""
    if isinstance(body, list):
        return [without_cost(element) for element in body]
    extensions = {k: v for k, v in body.get("extensions", {}).items() if k != "cost"}
    stripped = {k: v for k, v in body.items() if k != "extensions"}
    return {**stripped, "extensions": extensions} if extensions else stripped


@dataclass
class Outcome:
    data: Any
    errors: list[dict[str, Any]]
    statements: int
    sql: list[str]

    def error_paths(self) -> list[list[str | int]]:
        return [error.get("path", []) for error in self.errors]


async def run(
    engine: AsyncEngine,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    settings: Settings | None = None,
    context: Context | None = None,
) -> Outcome:
    settings = settings or Settings()
    context = context or Context.create(engine, settings)
    with count_statements(engine) as log:
        result = await Executor(schema, settings).run(GraphQLRequest(query, variables), context)
    formatted = result.formatted
    return Outcome(formatted.get("data"), formatted.get("errors", []), log.count, log.statements)


def graphql_scope(content_type: str, extra: dict[str, str] | None = None) -> dict[str, Any]:
    """The ASGI scope of a POST /graphql, for tests that drive the app's channels by hand."""
    raw = [(b"content-type", content_type.encode()), (b"host", b"testserver")]
    raw += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": raw,
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "state": {},
    }
