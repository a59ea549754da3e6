"""The compiled executor's fast path against values the real schema never produces.

The generated builders only decide values of the expected Python type; anything else must take
the careful path and come out exactly as graphql-core has it - coerced (`True` for an Int is 1),
or an error (an Int out of range, a None in a non-null field, an exception as a value, a 1->1
field with two children). A small schema of its own, with data in memory, puts every such value
in every position, in lists, in nested batch fields and in objects shared between parents.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import strawberry

from app.settings import Settings
from loaders.builder import BatchResult, from_sources
from loaders.field import LoaderRegistry, batch_field
from schema.compiled.model import OperationPlan
from schema.execution import Executor, GraphQLRequest
from tests.schema.query_strategies import Case
from tests.schema.test_compiled_differential import assert_same_response


@strawberry.enum
class Kind(enum.Enum):
    A = "A"
    B = "B"


ODD_VALUES: dict[str, list[Any]] = {
    "name": ["plain", 5, 2.5, True, None, ValueError("bad name")],
    "count": [1, True, 2**40, "7", 1.0, 1.5, None],
    "flag": [True, None, 0, "yes"],
    "kind": [Kind.A, "B", "Z", None],
    "when": [datetime(2026, 1, 1, tzinfo=UTC), None, "yesterday"],
}


async def item_children(items: list[Item]) -> BatchResult[Item]:
    # Item n has children n+1 and n+2 (while they exist): lists and shared objects.
    return from_sources(items).with_pairs(
        (item.pk, ITEMS[child - 1])
        for item in items
        for child in (item.pk + 1, item.pk + 2)
        if child <= len(ITEMS)
    )


async def item_twin(items: list[Item]) -> BatchResult[Item]:
    # 1->1: even items have one twin, every third has two (an error), the rest none.
    pairs = []
    for item in items:
        if item.pk % 3 == 0:
            pairs += [(item.pk, ITEMS[0]), (item.pk, ITEMS[1])]
        elif item.pk % 2 == 0:
            pairs.append((item.pk, ITEMS[item.pk % len(ITEMS)]))
    return from_sources(items).with_pairs(pairs)


@strawberry.type
class Item:
    pk: strawberry.Private[int]
    name: str
    count: int
    flag: bool | None
    kind: Kind
    when: datetime | None

    children: list[Item] = batch_field(item_children)
    twin: Item | None = batch_field(item_twin)


def make_item(pk: int) -> Item:
    values = {name: options[pk % len(options)] for name, options in ODD_VALUES.items()}
    return Item(pk=pk, **values)


ITEMS = [make_item(pk) for pk in range(1, 13)]


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item | None]:
        return [*ITEMS[:6], None]

    @strawberry.field
    def strict_items(self) -> list[Item]:
        return ITEMS[:4]


@dataclass
class Context:
    loaders: LoaderRegistry = field(default_factory=LoaderRegistry)


SCHEMA = strawberry.Schema(query=Query)
# A schema without cost directives: every list costs a full page, which these odd-value cases
# need not be limited by (the cost limit is tested in test_cost.py).
COMPILED = Executor(SCHEMA, Settings(max_operation_cost=0))
CORE = Executor(SCHEMA, Settings(max_operation_cost=0, compiled_execution=False))

QUERIES = [
    "{ items { name } }",
    "{ items { count flag } }",
    "{ items { kind when } }",
    "{ items { name count flag kind when } }",
    "{ strictItems { count } }",
    "{ strictItems { name } }",
    "{ items { children { name children { count } } } }",
    "{ items { twin { kind } } }",
    "{ items { __typename twin { children { when } } children { twin { name } } } }",
    "{ a: items { children { flag } } b: strictItems { children { kind } } }",
]


@pytest.mark.parametrize("query", QUERIES)
async def test_odd_values_come_out_as_graphql_core_has_them(query):
    outputs = []
    for executor in (COMPILED, CORE):
        result = await executor.run(GraphQLRequest(query), Context())
        outputs.append(orjson.dumps(result.formatted))
    # Same data; same errors, in an order that may differ when batch functions never wait
    # (see test_compiled_differential for what is compared, and why).
    assert_same_response(outputs[0], outputs[1], Case(query, {}))
    plans = list(COMPILED.prepare(query).plans.plans.values())
    assert plans and isinstance(plans[0], OperationPlan)
