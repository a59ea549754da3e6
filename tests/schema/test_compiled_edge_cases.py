"""The compiled executor's fast path against values the real schema never produces.

The generated builders only decide values of the expected Python type; anything else must take
the careful path and come out exactly as graphql-core has it - coerced (`True` for an Int is 1),
or an error (an Int out of range, a None in a non-null field, an exception as a value, a 1->1
field with two children). A small schema of its own, with data in memory, puts every such value
in every position, in lists, in nested batch fields and in objects shared between parents.

`Line` is built from rows (`schema.rows.RowType`): its lists take the projection path (rows to
dictionaries, no objects) until a value surprises it, and then build the objects and bail to the
careful path like any other list.
"""

from __future__ import annotations

import enum
from collections import namedtuple
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
from schema.rows import RowType
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


async def item_lines(items: list[Item]) -> BatchResult[Line]:
    wanted = {item.pk for item in items}
    rows = [row for row in LINE_TABLE if row.item_id in wanted]
    return from_sources(items).with_results(LINE_ROWS.rows(rows), key="item_pk")


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
    lines: list[Line] = batch_field(item_lines)


def make_item(pk: int) -> Item:
    values = {name: options[pk % len(options)] for name, options in ODD_VALUES.items()}
    return Item(pk=pk, **values)


ITEMS = [make_item(pk) for pk in range(1, 13)]


async def line_item(lines: list[Line]) -> dict[int, Item]:
    return {line.pk: ITEMS[line.item_pk - 1] for line in lines}


@strawberry.type
class Line:
    pk: strawberry.Private[int]
    item_pk: strawberry.Private[int]
    id: strawberry.ID
    name: str
    count: int
    flag: bool | None
    kind: Kind

    item: Item = batch_field(line_item)


# Columns in another order than the declaration's, and one (`note`) nobody reads.
LineRow = namedtuple("LineRow", "note kind flag count name id item_id")
LINE_ROWS = RowType(
    Line,
    pk="id",
    item_pk="item_id",
    id=("id", str),
    name="name",
    count="count",
    flag="flag",
    kind="kind",
)
GOOD_LINE = {"name": "plain", "count": 3, "flag": False, "kind": Kind.B}
ODD_LINE_VALUES: dict[str, list[Any]] = {
    "name": [None, 5],
    "count": [True, 2**40, None, "7"],
    "flag": ["yes", 0],
    "kind": ["B", "Z", None],
}
# Items 1-3 have good lines only; each of items 4-12 has one line with one odd value.
_ODD = [(column, value) for column, values in ODD_LINE_VALUES.items() for value in values]
LINE_TABLE = [
    LineRow("", **{**GOOD_LINE, "id": pk, "item_id": (pk + 1) // 2})  # type: ignore[arg-type]
    for pk in range(1, 7)
] + [
    LineRow("", **{**GOOD_LINE, column: value, "id": 7 + n, "item_id": 4 + n})  # type: ignore[arg-type]
    for n, (column, value) in enumerate(_ODD)
]


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item | None]:
        return [*ITEMS[:6], None]

    @strawberry.field
    def lines(self) -> list[Line]:
        return LINE_ROWS.rows(LINE_TABLE)  # type: ignore[return-value]

    @strawberry.field
    def good_lines(self) -> list[Line | None]:
        return LINE_ROWS.rows(LINE_TABLE[:6])  # type: ignore[return-value]

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
    # rows: projected, bailing on odd values, aliased, with fragments and nested batch fields
    "{ goodLines { __typename id n: name count flag kind } }",
    "{ lines { id name } }",
    "{ lines { count } }",
    "{ lines { flag kind } }",
    "{ lines { __typename i: id ...L } } fragment L on Line { kind name }",
    "{ items { lines { id count } } }",
    "{ strictItems { lines { name kind } } }",
    "{ items { lines { id item { name } } } }",
    "{ items { a: lines { id } b: lines { id item { count } } } }",
    "{ lines { id item { lines { id flag } } } }",
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


@strawberry.type
class LineQuery:
    @strawberry.field
    def good_lines(self) -> list[Line]:
        return LINE_ROWS.rows(LINE_TABLE[:6])  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("query", "built"),
    [
        ("{ goodLines { id name kind } }", False),
        ("{ goodLines { __typename } }", False),
        ("{ goodLines { id item { name } } }", True),  # the batch function takes the objects
    ],
)
async def test_good_rows_are_projected_without_objects(query, built, monkeypatch):
    made: list[int] = []
    build = RowType.build

    def counted(self: RowType[Any], rows: Any, names: Any) -> Any:
        made.append(len(rows))
        return build(self, rows, names)

    monkeypatch.setattr(RowType, "build", counted)
    line_schema = strawberry.Schema(query=LineQuery)
    outputs = []
    for settings in (Settings(), Settings(compiled_execution=False)):
        result = await Executor(line_schema, settings).run(GraphQLRequest(query), Context())
        outputs.append(orjson.dumps(result.formatted))
    assert outputs[0] == outputs[1]
    assert "errors" not in orjson.loads(outputs[0])
    # graphql-core always builds the objects; the compiled path only when it needs them
    assert made == ([6, 6] if built else [6])
