"""Static cost analysis of an operation, before it runs, and its actual cost after.

Why: depth, alias and token limits do not bound the work a query asks for (one `suppliers {
bakeries }` pair multiplies the response by ~39 on the demo data); a cost computed from the
schema's cost directives (`schema/directives.py`, IBM GraphQL Cost Directives spec) does, so an
operation over the limit is refused before a single SQL statement.

The cost model (also in the README, "Query cost"), for each field of the merged selection:

    cost(field) = weight * (records, for a write sized by a list argument; else 1)
                + n * (type weight + cost of its selection)

- `weight`: the field's `@cost` (10 for a field that goes to the database), else 0: charged once
  per resolution, i.e. once per parent object.
- type weight: the type's `@cost`, else 1 for an object, 0 for a scalar or an enum.
- `n`: 1 for a single value; for a list, the largest slicing argument given (`first`, `limitTo`,
  capped by `max_page_size`; a list argument written in the query counts its items, one in a
  variable counts `max_records_per_batch`),
  else the argument's default, else `@listSize(assumedSize)`, else the server's maximum (a list
  nothing bounds is costed as a full page). `sizedFields` hand that size down to child lists.
- Selections are merged as execution merges them (fragments, inline fragments, repeated fields);
  every alias counts; `@skip`/`@include` are honoured; introspection fields cost nothing.

The cost depends on the variables only through slicing arguments and `@skip`/`@include`, so an
operation's estimate is cached with its document, keyed by the values of the variables it read:
a cached query without such variables costs one dictionary look-up.
"""

from schema.cost.analysis import CostAnalysis, CostCache
from schema.cost.estimate import Estimate, OperationCost, ShapeField
from schema.cost.model import CostModel, FieldCost

__all__ = [
    "CostAnalysis",
    "CostCache",
    "CostModel",
    "Estimate",
    "FieldCost",
    "OperationCost",
    "ShapeField",
]
