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
