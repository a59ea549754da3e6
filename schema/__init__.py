"""The Batchery GraphQL schema (Strawberry), independent of any transport."""

from __future__ import annotations

import strawberry

from schema.mutation import Mutation
from schema.query import Query


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(query=Query, mutation=Mutation)


schema = build_schema()

__all__ = ["Mutation", "Query", "build_schema", "schema"]
