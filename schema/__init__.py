"""The Batchery GraphQL schema (Strawberry), independent of any transport.

Each feature contributes its own mutation class; they are merged into the one `Mutation` type.
"""

from __future__ import annotations

import strawberry
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from schema.access import READ, requires
from schema.bulk import BulkMutation
from schema.jobs import JobsMutation, JobsQuery, JobsSubscription
from schema.keys import KeyMutation
from schema.mutation import OrderMutation
from schema.query import Query as RootQuery
from schema.uploads import SCALARS, UploadMutation

MUTATIONS: tuple[type, ...] = (
    OrderMutation,
    UploadMutation,
    BulkMutation,
    KeyMutation,
    JobsMutation,
)


# Every root query field needs `read` (the type's @requiresScopes, which merge_types would drop),
# the jobs' fields `bulk` too; so does a subscription: it reads.
@strawberry.type(name="Query", directives=requires(READ))
class Query(RootQuery, JobsQuery):
    pass


Mutation = merge_types("Mutation", MUTATIONS)


@strawberry.type(name="Subscription", directives=requires(READ))
class Subscription(JobsSubscription):
    pass


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALARS),
    )


schema = build_schema()

__all__ = ["Mutation", "Query", "Subscription", "build_schema", "schema"]
