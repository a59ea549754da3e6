"""The node budget, on both executors: what counts, the refusal, and the memory it gives back."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import pytest

from app.settings import Settings
from schema import schema
from schema.context import Context
from schema.execution import Executor, GraphQLRequest
from schema.guards import NODE_LIMIT_CODE, NODE_LIMIT_SETTING, NodeBudget, NodeLimitExceeded

EXECUTORS = ["compiled", "graphql-core"]
# 50 bakeries of 60 orders (tests/conftest.py READ_SEED).
ORDERS = "{ bakeries { name orders(limitTo: 60) { id bakery { id } } } }"
ORDERS_NODES = 50 + 50 * 60 + 50 * 60  # bakeries, list items, each order's bakery object


def count_nodes(value: Any, listed: bool = False) -> int:
    """Nodes as schema/guards.py counts them: list items, and objects that are not list items."""
    if isinstance(value, list):
        return len(value) + sum(count_nodes(item, True) for item in value)
    if isinstance(value, dict):
        return (0 if listed else 1) + sum(count_nodes(v) for v in value.values())
    return 0


def data_nodes(data: dict[str, Any]) -> int:
    return sum(count_nodes(value) for value in data.values())  # the root object is not counted


def executor(kind: str, **changes: Any) -> Executor:
    return Executor(schema, Settings(compiled_execution=kind == "compiled", **changes))


async def run(engine: Any, ex: Executor, query: str) -> Any:
    return await ex.run(GraphQLRequest(query), Context.create(engine, ex.settings))


def test_lists_count_in_bulk_and_the_limit_is_exceeded_past_it_not_at_it():
    budget = NodeBudget(10)
    budget.spend(7)
    budget.spend(3)
    with pytest.raises(NodeLimitExceeded) as refused:
        budget.spend(1)
    assert "10" in str(refused.value) and NODE_LIMIT_SETTING in str(refused.value)
    unlimited = NodeBudget(0)  # 0 is no limit
    unlimited.spend(1 << 40)
    assert not gc.isenabled()  # a large result holds the collector off...
    unlimited.close()
    assert gc.isenabled()  # ...until its operation ends


@pytest.mark.parametrize("kind", EXECUTORS)
async def test_an_operation_within_the_limit_runs_whole(read_engine, kind):
    result = await run(read_engine, executor(kind, max_result_nodes=ORDERS_NODES), ORDERS)
    assert result.errors is None
    assert data_nodes(result.data) == ORDERS_NODES


@pytest.mark.parametrize("kind", EXECUTORS)
async def test_one_node_over_the_limit_stops_the_operation_with_no_partial_data(read_engine, kind):
    result = await run(read_engine, executor(kind, max_result_nodes=ORDERS_NODES - 1), ORDERS)
    assert result.data is None
    [error] = result.errors
    assert error.extensions == {"code": NODE_LIMIT_CODE}
    assert f"{ORDERS_NODES - 1:,} nodes" in error.message
    assert NODE_LIMIT_SETTING in error.message
    assert error.path is None


@pytest.mark.parametrize("kind", EXECUTORS)
async def test_scalars_and_the_root_object_do_not_count(read_engine, kind):
    query = "{ products { id name } bakery(id: 1) { id name region } }"
    result = await run(read_engine, executor(kind), query)
    nodes = data_nodes(result.data)
    assert nodes == len(result.data["products"]) + 1
    assert (await run(read_engine, executor(kind, max_result_nodes=nodes), query)).errors is None
    refused = await run(read_engine, executor(kind, max_result_nodes=nodes - 1), query)
    assert refused.data is None


@pytest.mark.parametrize("kind", EXECUTORS)
async def test_the_memory_of_a_refused_operation_is_given_back(read_engine, kind):
    # Aliases multiply the result: ~36,000 nodes, refused near the end of building them.
    query = (
        "{ "
        + " ".join(
            f"a{i}: bakeries {{ orders(limitTo: 60) {{ id writtenPhrase status }} }}"
            for i in range(12)
        )
        + " }"
    )
    ex = executor(kind, max_result_nodes=11 * (50 + 50 * 60))
    await run(read_engine, ex, query)  # documents, plans and statements cached before measuring
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        result = await run(read_engine, ex, query)
        assert result.data is None and result.errors[0].extensions == {"code": NODE_LIMIT_CODE}
        del result
        # The cancelled siblings' last callbacks run in the loop's next turns: by the time
        # another operation has read from the database, they have.
        assert (await run(read_engine, ex, "{ bakery(id: 1) { id } }")).errors is None
        gc.collect()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before > 4_000_000  # it did build a large part of the result...
    assert after - before < 500_000  # ...and none of it is still held


@pytest.mark.parametrize("kind", EXECUTORS)
async def test_a_large_result_holds_the_collector_off_only_until_it_ends(read_engine, kind):
    query = (
        "{ "
        + " ".join(f"a{i}: bakeries {{ orders(limitTo: 60) {{ id }} }}" for i in range(8))
        + " }"
    )
    after_answer: list[Any] = []
    ex = executor(kind)
    context = Context.create(read_engine, ex.settings, after_answer=after_answer)
    result = await ex.run(GraphQLRequest(query), context)
    assert data_nodes(result.data) > 20_000 and not gc.isenabled()  # held while it is alive
    del result
    for action in after_answer:
        action()
    assert gc.isenabled()
    # Without a transport to say when the result is gone, it is released with the operation,
    # refused or not.
    for limit in (0, 10_000):
        refused_or_not = await run(read_engine, executor(kind, max_result_nodes=limit), query)
        assert refused_or_not is not None and gc.isenabled()
