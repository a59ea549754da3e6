"""The compiled executor against graphql-core: the same JSON for every query, errors included.

Generated queries (see query_strategies.py) run through both paths on a real seeded database
(SQLite and PostgreSQL) that holds the faults a production schema meets:

- a bakery with two managers: `Bakery.manager` is 1->1, so that bakery's field is an error;
- a batch statement that fails (`Supplier.bakeries` whenever supplier 2 is in the batch);
- a row that has gone: `bakeries_by_id` never finds bakery 4, so `CakeOrder.bakery` (non-null)
  gets null for its orders and the error propagates, while `Baker.bakery` (nullable) is null;
- arguments the resolvers refuse (`limitTo: -1`), and variables that do not coerce.

What "the same" means, precisely. graphql-core records errors in the order its tasks happen to
finish, so two runs of graphql-core itself can disagree. The reader here makes that order
repeatable (one statement at a time, first come first served, the event loop settled before
each). Then for the named cases below the responses must be equal byte for byte, and for
generated ones:

- `data` must be byte for byte the same (values, nulls, key order);
- every error that did not propagate (it sits where its own field is null) must be in both;
- the positions that propagated errors nulled must be the same, each with an error.

What is not compared for generated queries: the order of the errors list, and which error stands
for a position when several raced to null it (or to null a position holding another). graphql-core
gives both in the order its tasks get to run, which depends on how its tasks nest (an object with
one asynchronous field awaits it in place, one with two starts a task for each, a propagating
error first cancels its siblings) - the GraphQL spec leaves both open. The compiled executor
reports errors level by level in response order, which is graphql-core's order whenever a batch
serves one selection; they differ when several selections share one loader and each has errors
(about 1 generated query in 500).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

import orjson
import pytest
import pytest_asyncio
from graphql.execution import Executor as GraphQLCoreExecutor
from hypothesis import HealthCheck, Phase, example, given, settings
from sqlalchemy import Executable, Row, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import reads
from app.db.cursors import bakery_cursor, order_cursor
from app.db.reads import Reader
from app.db.seed import EPOCH
from app.settings import Settings
from schema import schema
from schema.compiled.model import OperationPlan
from schema.context import Context
from schema.execution import Executor, GraphQLRequest
from tests.schema.query_strategies import Case, queries

FAILING_SUPPLIER = 2
VANISHED_BAKERY = 4
TWO_MANAGERS = 2

# The referee compares two executors on any query the strategies draw (`first: null` included):
# the cost limit, which would refuse some before either runs, is tested in test_cost.py.
SETTINGS = Settings(max_operation_cost=0)
COMPILED = Executor(schema, SETTINGS)
CORE = Executor(schema, SETTINGS.replace(compiled_execution=False))
EXAMPLES = int(os.environ.get("BATCHERY_DIFFERENTIAL_EXAMPLES", "120"))
# A failure is reported as drawn; set BATCHERY_DIFFERENTIAL_SHRINK=1 to have it shrunk (slow).
PHASES = (
    tuple(Phase)
    if os.environ.get("BATCHERY_DIFFERENTIAL_SHRINK")
    else (
        Phase.explicit,
        Phase.generate,
    )
)
# Loop iterations the reader lets pass before each statement (see FaultyReader.turn).
SETTLE_ITERATIONS = 20


class FaultyReader(Reader):
    """The real reader, one statement at a time, with the faults described above."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """One statement at a time, first come first served; and before each, the event loop
        runs whatever is ready (error propagation through graphql-core's tasks, the next level's
        loads). Without this, graphql-core's outcome depends on whether a statement's thread
        finishes before or after its tasks have caught up: the same query then gives it two
        different responses, and no other executor can match both."""
        async with self.lock:
            for _ in range(SETTLE_ITERATIONS):
                await asyncio.sleep(0)
            yield

    async def _all(
        self, statement: Executable, params: Mapping[str, Any] | None = None
    ) -> Sequence[Row[tuple[object, ...]]]:
        async with self.turn():
            return await super()._all(statement, params)

    async def _first(
        self, statement: Executable, params: Mapping[str, Any] | None = None
    ) -> Row[tuple[object, ...]] | None:
        async with self.turn():
            return await super()._first(statement, params)

    async def bakeries_of_suppliers(
        self, supplier_ids: Sequence[int]
    ) -> Sequence[Row[tuple[object, ...]]]:
        if FAILING_SUPPLIER in supplier_ids:
            async with self.turn():
                raise RuntimeError("the connection to the database was reset")
        return await super().bakeries_of_suppliers(supplier_ids)

    async def bakeries_by_id(self, ids: Sequence[int]) -> Sequence[Row[tuple[object, ...]]]:
        rows = await super().bakeries_by_id(ids)
        return [row for row in rows if row.id != VANISHED_BAKERY]


@pytest_asyncio.fixture
async def faulty_engine(engine: AsyncEngine) -> AsyncEngine:
    async with engine.begin() as conn:
        await conn.execute(
            update(reads.bakers)
            .where(reads.bakers.c.bakery_id == TWO_MANAGERS)
            .values(is_manager=True)
        )
        await conn.execute(
            insert(reads.photos).values(
                order_id=1, filename="a.png", content_type="image/png", size=1, sha256="a" * 64
            )
        )
    return engine


async def run_both(
    engine: AsyncEngine, case: Case, executors: tuple[Executor, Executor] = (COMPILED, CORE)
) -> tuple[bytes, bytes]:
    outputs = []
    for executor in executors:
        context = Context.create(engine, SETTINGS, reader=FaultyReader(engine))
        result = await executor.run(GraphQLRequest(case.query, case.variables), context)
        outputs.append(orjson.dumps(result.formatted))
    return outputs[0], outputs[1]


def count_nodes(value: Any, listed: bool = False) -> int:
    """Result nodes as schema/guards.py counts them: list items, and objects not in a list."""
    if isinstance(value, list):
        return len(value) + sum(count_nodes(item, True) for item in value)
    if isinstance(value, dict):
        return (0 if listed else 1) + sum(count_nodes(v) for v in value.values())
    return 0


async def assert_same_node_limit_outcome(engine: AsyncEngine, case: Case, response: bytes) -> None:
    """With the node limit at the response's node count both executors answer it whole; one
    below, both refuse it the same way. (Only for responses without errors: where a field
    fails, graphql-core may build siblings of the failed part the compiled executor skips.)"""
    body = orjson.loads(response)
    if body.get("errors") or not body.get("data"):
        return
    nodes = sum(count_nodes(value) for value in body["data"].values())
    for limit in (nodes, nodes - 1) if nodes > 1 else ():  # (a limit of 0 is no limit)
        limited = SETTINGS.replace(max_result_nodes=limit)
        executors = (
            Executor(schema, limited),
            Executor(schema, limited.replace(compiled_execution=False)),
        )
        compiled, core = await run_both(engine, case, executors)
        assert compiled == core, (case, limit)
        if limit == nodes:
            assert compiled == response, case
        else:
            assert orjson.loads(compiled)["errors"][0]["extensions"] == {
                "code": "NODE_LIMIT_EXCEEDED"
            }, case


def nulled_position(data: Any, path: list[str | int]) -> tuple[str | int, ...]:
    """The outermost null on an error's path: the error's own field, or the nullable position it
    (or a sibling error) propagated to, or the whole response."""
    node = data
    if node is None:
        return ()
    for end, key in enumerate(path, 1):
        node = node[key]
        if node is None:
            return tuple(path[:end])
    raise AssertionError(f"no null on the path of an error: {path}")


def assert_same_response(compiled: bytes, core: bytes, case: Case) -> None:
    """Equal as explained at the top of this module."""
    if compiled == core:
        return
    ours, theirs = orjson.loads(compiled), orjson.loads(core)
    assert orjson.dumps(ours.get("data")) == orjson.dumps(theirs.get("data")), case
    data = ours.get("data")
    if "data" not in ours:  # refused before execution: the errors are all there is
        assert ours == theirs, case
    kept: list[list[dict[str, Any]]] = [[], []]
    positions: list[set[tuple[str | int, ...]]] = [set(), set()]
    for side, body in enumerate((ours, theirs)):
        for error in body.get("errors", []):
            position = nulled_position(data, error.get("path", []))
            if position == tuple(error.get("path", [])):
                kept[side].append(error)
            else:
                positions[side].add(position)
    assert sorted(map(repr, kept[0])) == sorted(map(repr, kept[1])), case
    assert positions[0] == positions[1], case


def assert_compiled_path_ran(case: Case) -> None:
    """A comparison of graphql-core with itself would prove nothing: when the operation could
    run at all, the compiled executor must have run it with a plan."""
    prepared = COMPILED.prepare(case.query)
    if prepared.document is None:
        return  # refused by validation: nothing executed on either path
    built = GraphQLCoreExecutor.build(schema._schema, prepared.document, None, None, case.variables)
    if isinstance(built, list):
        return  # variables that do not coerce: reported before execution on both paths
    plans = list(prepared.plans.plans.values())
    assert plans and all(isinstance(plan, OperationPlan) for plan in plans), case


NAMED_CASES = [
    # a batch function that raises (masked: an unexpected fault), under a nullable parent
    Case("{ bakeries { id suppliers { id bakeries { id } } } }", {}),
    # a batch function that raises a client error, propagated to the top (orders is non-null)
    Case("{ bakeries { name orders(limitTo: -1) { id } } }", {}),
    # 1->1 with two children: an error on that bakery's field only
    Case("{ bakeries { id manager { firstName } } }", {}),
    # a non-null field that gets null: the error nulls the nearest nullable parent
    Case("{ o: cakeOrder(id: 16) { id bakery { name } } b: bakery(id: 4) { id } }", {}),
    Case("{ bakeries { id orders(limitTo: 2) { id bakery { id manager { id } } } } }", {}),
    # variables that do not coerce, or are missing
    Case("query($n: Int) { bakeries(first: $n) { id } }", {"n": "ten"}),
    Case("query($id: ID!) { bakery(id: $id) { id } }", {}),
    Case("query($n: Int) { bakeries(first: $n) { id } }", {"n": 2**31}),
    # fragments, @skip/@include with variables, aliases on one field with different arguments
    Case(
        "query($s: Boolean!) { bakeries(first: 3) { ...B a: orders(limitTo: 1) { id } "
        "b: orders(limitTo: 3) @include(if: $s) { id photo { url } } } } "
        "fragment B on Bakery { __typename id @skip(if: $s) name region }",
        {"s": True},
    ),
    Case("{ cakeOrder(id: 1) { photo { url size } bakery { name } } products { name } }", {}),
    # connections: pages, totals, a level of per-bakery pages under them, refused cursors
    Case(
        "{ bakeriesConnection(first: 3) { totalCount edges { cursor node { id manager { id } } } "
        "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }",
        {},
    ),
    Case(
        "query($a: String) { bakeriesConnection(first: 2, after: $a, region: null) { edges { "
        "node { id ordersConnection(first: 2) { totalCount edges { cursor node { id bakery "
        "{ name } } } pageInfo { hasNextPage endCursor } } } } } }",
        {"a": bakery_cursor(2)},
    ),
    Case(
        '{ bakeries(first: 2) { id ordersConnection(after: "nope") { totalCount } } '
        "products { id } }",
        {},
    ),
    Case(
        "query($a: String) { bakery(id: 1) { a: ordersConnection(first: 1) { edges { cursor } } "
        "b: ordersConnection(first: 2, after: $a) { edges { node { id } } } } }",
        {"a": order_cursor(EPOCH + timedelta(minutes=200), 10)},
    ),
    # the projection path (rows to JSON, no objects): aliases, __typename, every column type,
    # fragments; root bakeries from rows; one loader serving a projected selection and one that
    # needs the objects (a batch field under the orders, with the vanished bakery 4's error)
    Case(
        "{ bakeries(first: 3) { __typename name o: orders(limitTo: 2) { __typename i: id "
        "writtenPhrase status currentTotal createdAt externalId } } }",
        {},
    ),
    Case(
        "{ bakeries(first: 2) { ...F orders(limitTo: 2) { ... on CakeOrder { id } ...O } } } "
        "fragment F on Bakery { id region externalId } fragment O on CakeOrder { writtenPhrase }",
        {},
    ),
    Case(
        "{ bakeries(first: 5) { a: orders(limitTo: 2) { id } b: orders(limitTo: 2) { id "
        "bakery { name orders(limitTo: 1) { writtenPhrase } } } } }",
        {},
    ),
    Case("{ bakeries { externalId region } x: bakeries(first: 1) { __typename } }", {}),
    # empty lists under parents, with a batch field below them: no batch at all for it
    Case("{ bakeries(first: 2) { orders(limitTo: 0) { bakery { name } } } }", {}),
]


@pytest.mark.parametrize("case", NAMED_CASES, ids=lambda case: case.query[:40])
async def test_named_cases_match_graphql_core(faulty_engine, case):
    compiled, core = await run_both(faulty_engine, case)
    assert compiled == core
    assert_compiled_path_ran(case)
    await assert_same_node_limit_outcome(faulty_engine, case, compiled)


async def test_the_named_cases_do_produce_their_errors(faulty_engine):
    """The fault set-up works: each named case meets the error it is named for."""
    messages = []
    for case in NAMED_CASES[:8]:
        compiled, _ = await run_both(faulty_engine, case)
        body = orjson.loads(compiled)
        messages.append(body.get("errors", [{}])[0].get("message"))
    assert messages == [
        "Internal server error",
        "limitTo must be zero or more, got -1",
        "bakery_manager expects at most one result per parent, but 2 were found for parent 2",
        "Internal server error",  # "Cannot return null for non-nullable field", masked
        "Internal server error",
        "Variable '$n' has invalid value: Int cannot represent non-integer value: 'ten'",
        "Variable '$id' has invalid value: Expected a value of non-null type 'ID!' to be provided.",
        "Variable '$n' has invalid value: "
        "Int cannot represent non 32-bit signed integer value: 2147483648",
    ]


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=PHASES,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=queries(schema._schema))
@example(case=NAMED_CASES[0])
async def test_generated_queries_match_graphql_core(faulty_engine, case):
    compiled, core = await run_both(faulty_engine, case)
    assert_same_response(compiled, core, case)
    assert_compiled_path_ran(case)
    await assert_same_node_limit_outcome(faulty_engine, case, compiled)


@pytest.mark.parametrize(
    ("query", "operation_name"),
    [
        ("query A { products { id } } query B { __typename }", None),
        ("query A { products { id } } query B { __typename }", "C"),
        ("query A { products { id } } query B { __typename }", "B"),
        ("fragment F on Query { __typename }", None),
    ],
)
async def test_choosing_the_operation_matches_graphql_core(faulty_engine, query, operation_name):
    outputs = []
    for executor in (COMPILED, CORE):
        context = Context.create(faulty_engine, SETTINGS, reader=FaultyReader(faulty_engine))
        request = GraphQLRequest(query, None, operation_name)
        outputs.append(orjson.dumps((await executor.run(request, context)).formatted))
    assert outputs[0] == outputs[1]
