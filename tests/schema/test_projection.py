"""The projection path on the real schema and database: a selection of plain columns goes from
the rows to JSON without building the schema's objects; one that needs them (a batch field under
the orders, graphql-core) builds them once, and a loader's cached rows serve both kinds of
selection, in one operation or in the operations of one batch, for the statements of one."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from app.db.statements import count_statements
from app.settings import Settings
from schema import guards, schema
from schema.context import Context
from schema.execution import Executor, GraphQLRequest
from schema.rows import RowType

PROJECTED = "{ bakeries(first: 3) { name orders(limitTo: 4) { id writtenPhrase status } } }"
NEEDS_OBJECTS = "{ bakeries(first: 3) { orders(limitTo: 4) { id bakery { name } } } }"


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Objects built from rows, by type."""
    made: dict[str, int] = {}
    build = RowType.build

    def counted(self: RowType[Any], rows: Any, names: Any) -> Any:
        made[self.cls.__name__] = made.get(self.cls.__name__, 0) + len(rows)
        return build(self, rows, names)

    monkeypatch.setattr(RowType, "build", counted)
    # No turn given mid-level: a batch then always holds every operation's keys (see
    # test_shared_loaders.py), so the statement counts below are exact.
    monkeypatch.setattr(guards, "SLICE_SECONDS", 3600.0)
    return made


async def run(engine: Any, query: str, context: Context | None = None, **settings: Any) -> bytes:
    chosen = Settings(**settings)
    context = context if context is not None else Context.create(engine, chosen)
    result = await Executor(schema, chosen).run(GraphQLRequest(query), context)
    return orjson.dumps(result.formatted)


async def test_plain_columns_go_from_rows_to_json_without_objects(read_engine, built):
    with count_statements(read_engine) as statements:
        compiled = await run(read_engine, PROJECTED)
    assert statements.count == 2
    # the bakeries are built: they are the parents the orders' batch function takes
    assert built == {"Bakery": 3}
    core = await run(read_engine, PROJECTED, compiled_execution=False)
    assert compiled == core and b"errors" not in compiled
    assert built == {"Bakery": 6, "CakeOrder": 12}


async def test_a_batch_field_under_the_orders_builds_them_once(read_engine, built):
    with count_statements(read_engine) as statements:
        compiled = await run(read_engine, NEEDS_OBJECTS)
    assert statements.count == 3
    assert built["CakeOrder"] == 12
    assert compiled == await run(read_engine, NEEDS_OBJECTS, compiled_execution=False)


async def test_one_loader_serves_projected_and_object_selections(read_engine, built):
    both = (
        "{ bakeries(first: 3) { a: orders(limitTo: 4) { id writtenPhrase } "
        "b: orders(limitTo: 4) { id bakery { name } } c: orders(limitTo: 4) { __typename } } }"
    )
    with count_statements(read_engine) as statements:
        compiled = await run(read_engine, both)
    assert statements.count == 3
    assert built["CakeOrder"] == 12  # once, for `b`; `a` and `c` read the same rows
    assert compiled == await run(read_engine, both, compiled_execution=False)


@pytest.mark.parametrize("order", [(PROJECTED, NEEDS_OBJECTS), (NEEDS_OBJECTS, PROJECTED)])
async def test_the_operations_of_a_batch_share_the_rows_whichever_reads_first(
    read_engine, built, order
):
    alone = [await run(read_engine, query) for query in order]
    settings = Settings()
    context = Context.create(read_engine, settings)
    with count_statements(read_engine) as statements:
        together = await asyncio.gather(*(run(read_engine, query, context) for query in order))
    assert statements.count == 3  # bakeries, orders, the orders' bakeries: one of each
    assert list(together) == alone
