"""The cost directives of the IBM GraphQL Cost Directives spec, as they appear in our SDL.

They are how the schema says what an operation costs, so that a client (or a gateway) can compute
the cost of a query from `batchery schema` alone, the way `schema/cost` computes it before
running the query. The weights and sizes below are the server's assumptions; the README's
"Query cost" section says how each was chosen.
"""

from __future__ import annotations

import strawberry
from strawberry.schema_directive import Location


@strawberry.schema_directive(
    name="cost",
    locations=[Location.FIELD_DEFINITION, Location.OBJECT],
    description="The weight of resolving this field once (on a field), or of each object of "
    "this type in a response (on a type). IBM GraphQL Cost Directives spec.",
)
class Cost:
    weight: int


@strawberry.schema_directive(
    name="listSize",
    locations=[Location.FIELD_DEFINITION],
    description="How many items this list field returns: the value of a slicing argument "
    "(capped by the server's page size), else `assumedSize`. IBM GraphQL Cost Directives spec.",
)
class ListSize:
    # UNSET: the argument is left out of the printed SDL (the spec's defaults apply).
    assumed_size: int | None = strawberry.UNSET
    slicing_arguments: list[str] | None = strawberry.UNSET
    sized_fields: list[str] | None = strawberry.UNSET
    require_one_slicing_argument: bool = True


# A field whose resolver goes to the database (a batch field, a root read, a write). One SQL round
# trip per level, but the parent's key in the statement and the share of rows handed back to it are
# work per parent: Hot Chocolate's default weight for a resolver doing I/O.
DATABASE = Cost(weight=10)

# Fan-out measured on the demo data (`batchery seed`: 50 bakeries, 12 suppliers, 3 per bakery):
# every bakery has exactly 3 suppliers; a supplier serves 9 to 17 bakeries (12.5 on average).
# Rounded up a little, as assumptions about a list no argument bounds.
SUPPLIERS_PER_BAKERY = ListSize(assumed_size=5)
BAKERIES_PER_SUPPLIER = ListSize(assumed_size=20)
# A bulk record is validated field by field: at most one error per input field (5 at most).
ERRORS_PER_RECORD = ListSize(assumed_size=5)


def sliced_by(*arguments: str, sized_fields: list[str] | None = None) -> ListSize:
    """A list whose length an argument gives (`first`, `limitTo`, or a list of records)."""
    return ListSize(
        slicing_arguments=list(arguments),
        sized_fields=sized_fields if sized_fields is not None else strawberry.UNSET,
        require_one_slicing_argument=False,
    )
