"""Shared subtrees (schema/compiled/sharing.py): an object met at several positions under the same
selection is built and run once; every other position gets a marker that spends its nodes and,
where the shared part met an error, is run again for real.

The referee here is the compiled executor with sharing off (`SHARE_SUBTREES`), which runs every
position's children as it did before, and which test_compiled_differential proves against
graphql-core: with sharing on, the response must be the same byte for byte - errors, their order
and their paths, nulls, and the node budget's verdict at every limit. A small in-memory graph
puts errors (nullable and non-null, from batch functions) at known nodes under shared parts;
the real schema's faults (test_compiled_differential) do the same on a database.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
import strawberry
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.db.statements import count_statements
from app.settings import Settings
from loaders.dataloader import SafeDataLoader
from loaders.field import LoaderRegistry, batch_field
from schema import guards, schema
from schema.compiled import completion, sharing
from schema.context import Context as AppContext
from schema.execution import Executor, GraphQLRequest
from tests.schema.query_strategies import Case, queries
from tests.schema.test_compiled_differential import (
    assert_same_response,
    count_nodes,
    faulty_engine,  # noqa: F401 (a fixture)
    run_both,
)

# Generated queries on the graph (a third of the differential test's default: each runs five times).
EXAMPLES = int(os.environ.get("BATCHERY_DIFFERENTIAL_EXAMPLES", "120")) // 3


@pytest.fixture(autouse=True)
def no_turns_by_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sibling batches interleave their errors differently when a builder gives the event loop a
    turn, and those turns come by wall time (schema/guards.py): two runs compared byte for byte
    get none. (The turns themselves: test_the_event_loop_gets_its_turns_between_shared_parts.)"""
    monkeypatch.setattr(guards, "SLICE_SECONDS", 3600.0)


SIZE = 12
TAG_FAILS = 4  # `tag` (nullable) is an error for these nodes
STRICT_FAILS = 5  # `strictTag` (non-null) is an error for these: it nulls the nearest nullable


def links_of(pk: int) -> list[int]:
    # Many parents share a child: the same lists and objects at many positions.
    return sorted({(pk * 2) % SIZE, (pk * 3 + 1) % SIZE, (pk + 1) % SIZE})


async def node_links(nodes: list[Node]) -> dict[int, Any]:
    return {node.pk: [NODES[pk] for pk in links_of(node.pk)] for node in nodes}


async def node_maybe_links(nodes: list[Node]) -> dict[int, Any]:
    return {
        node.pk: None
        if node.pk == 7
        else [None if pk % 3 == 0 else NODES[pk] for pk in links_of(node.pk)]
        for node in nodes
    }


async def node_tag(nodes: list[Node]) -> dict[int, Any]:
    return {
        n.pk: ValueError(f"no tag for {n.pk}") if n.pk == TAG_FAILS else f"t{n.pk}" for n in nodes
    }


async def node_strict_tag(nodes: list[Node]) -> dict[int, Any]:
    return {n.pk: None if n.pk == STRICT_FAILS else f"s{n.pk}" for n in nodes}


async def node_partner(nodes: list[Node]) -> dict[int, Any]:
    return {node.pk: NODES[node.pk % 3] for node in nodes}


@strawberry.type
class Node:
    pk: strawberry.Private[int]
    name: str
    links: list[Node] = batch_field(node_links)
    maybe_links: list[Node | None] | None = batch_field(node_maybe_links)
    tag: str | None = batch_field(node_tag)
    strict_tag: str = batch_field(node_strict_tag)
    partner: Node | None = batch_field(node_partner)


NODES = [Node(pk=pk, name=f"n{pk}") for pk in range(SIZE)]


@strawberry.type
class Query:
    @strawberry.field
    def nodes(self) -> list[Node | None]:
        return list(NODES)

    @strawberry.field
    def strict_nodes(self) -> list[Node]:
        return NODES[:4]


@dataclass
class GraphContext:
    loaders: LoaderRegistry = field(default_factory=LoaderRegistry)


GRAPH = strawberry.Schema(query=Query)
GRAPH_SETTINGS = Settings(max_operation_cost=0)
GRAPH_QUERIES = [
    # no errors: sharing at two levels, lists and single objects
    "{ nodes { links { links { links { name } } } } }",
    "{ nodes { partner { name links { partner { name } } } } }",
    # aliases and fragments inside the shared part: sibling batches under one marker
    "{ nodes { links { ...L a: links { name } } } } "
    "fragment L on Node { b: links { name links { name } } c: partner { name } }",
    # a nullable error inside shared parts: reported at every position
    "{ nodes { links { links { name tag } } } }",
    "{ nodes { partner { links { tag links { tag } } } } }",
    # a non-null null inside shared parts: nulls the nearest nullable, inside or above them
    "{ nodes { links { links { strictTag } } } }",
    "{ nodes { partner { links { strictTag } } } }",
    "{ nodes { maybeLinks { maybeLinks { strictTag name } } } }",
    # an error elsewhere nulls the canonical position of a shared part while others live on
    "{ nodes { links { strictTag links { links { name } } } } }",
    "{ nodes { links { links { links { name } strictTag } } } }",
    "{ nodes { links { links { tag links { strictTag } } } } }",
    "{ strictNodes { links { links { tag } } } nodes { partner { partner { name } } } }",
]


async def run_graph(
    query: str, settings: Settings = GRAPH_SETTINGS, *, share: bool = True
) -> bytes:
    executor = Executor(GRAPH, settings)
    saved = completion.SHARE_SUBTREES
    completion.SHARE_SUBTREES = share
    try:
        result = await executor.run(GraphQLRequest(query), GraphContext())
    finally:
        completion.SHARE_SUBTREES = saved
    return orjson.dumps(result.formatted)


class Spy:
    """Counts what sharing did in a run: markers made, and markers run again for real."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.markers = 0
        self.expanded = 0
        self.dead = 0
        spy = self
        marker_init = sharing.Marker.__init__

        def counted_init(marker: sharing.Marker, *args: Any) -> None:
            spy.markers += 1
            marker_init(marker, *args)

        image = sharing.Marker.image

        def counted_image(marker: sharing.Marker, item: Any) -> Any:
            spy.expanded += 1
            return image(marker, item)

        skip = sharing.Ledger.skip

        def counted_skip(ledger: sharing.Ledger, *args: Any) -> None:
            spy.dead += 1
            skip(ledger, *args)

        monkeypatch.setattr(sharing.Marker, "__init__", counted_init)
        monkeypatch.setattr(sharing.Marker, "image", counted_image)
        monkeypatch.setattr(sharing.Ledger, "skip", counted_skip)


@pytest.mark.parametrize("query", GRAPH_QUERIES)
async def test_sharing_changes_nothing_in_the_response(query, monkeypatch):
    spy = Spy(monkeypatch)
    shared = await run_graph(query)
    assert spy.markers > 0, "the query shares nothing: it tests nothing here"
    unshared = await run_graph(query, share=False)
    assert shared == unshared
    core = await run_graph(query, GRAPH_SETTINGS.replace(compiled_execution=False))
    assert_same_response(shared, core, Case(query, {}))


async def test_the_cases_meet_what_they_are_for(monkeypatch):
    """Errors under shared parts are run again at each position; a canonical position nulled
    from elsewhere is too (its part is run where it lives on)."""
    spy = Spy(monkeypatch)
    body = orjson.loads(await run_graph("{ nodes { links { links { name tag } } } }"))
    paths = [tuple(error["path"]) for error in body["errors"]]
    assert len(paths) == len(set(paths)) > 1  # one error per position of the failing node
    assert spy.expanded > 0
    spy.expanded = spy.dead = 0
    await run_graph("{ nodes { links { links { links { name } strictTag } } } }")
    assert spy.dead > 0 and spy.expanded > 0


@pytest.mark.parametrize("query", GRAPH_QUERIES)
async def test_the_node_budget_gives_the_same_verdict_at_every_limit(query):
    """Every limit from 1 to past the response's size: sharing on and off refuse or answer
    alike (a shared part counts at every position it appears at)."""
    body = orjson.loads(await run_graph(query))
    nodes = sum(count_nodes(value) for value in (body.get("data") or {}).values())
    assert nodes > 10
    for limit in range(1, nodes + 2):
        settings = GRAPH_SETTINGS.replace(max_result_nodes=limit)
        shared = await run_graph(query, settings)
        assert shared == await run_graph(query, settings, share=False), limit
        if not body.get("errors"):  # (nodes in parts an error nulled count too)
            refused = b"NODE_LIMIT_EXCEEDED" in shared
            assert refused == (limit < nodes), (limit, nodes)


# ---- the real schema ----

DEEP = "{ bakeries { suppliers { bakeries { orders { id } } } } }"
REAL_CASES = [
    # 1->1 with two children, under the bakery shared by its orders: an error at each path
    "{ bakeries(first: 3) { id orders(limitTo: 3) { id bakery { id manager { id firstName } } } "
    "} }",
    # a refused argument inside shared parts: nulls the nullable `Baker.bakery` of each
    "{ bakeries(first: 3) { orders(limitTo: 2) { bakery { name manager { id bakery { id "
    "orders(limitTo: -1) { id } } } } } } }",
    # aliases and a fragment inside the shared bakery; a vanished bakery (nullable) in it
    "{ bakeries(first: 5) { o: orders(limitTo: 2) { ...O } } } fragment O on CakeOrder { id "
    "b: bakery { n: name manager { bakery { name } } l: orders(limitTo: 1) { id } } }",
]


@pytest.mark.parametrize("query", REAL_CASES)
async def test_shared_parts_of_the_real_schema_match_graphql_core(
    faulty_engine,  # noqa: F811 (the fixture imported above)
    query,
    monkeypatch,
):
    spy = Spy(monkeypatch)
    case = Case(query, {})
    compiled, core = await run_both(faulty_engine, case)
    assert compiled == core
    assert spy.markers > 0
    monkeypatch.setattr(completion, "SHARE_SUBTREES", False)
    unshared, _ = await run_both(faulty_engine, case)
    assert compiled == unshared


async def test_deep_runs_each_shared_part_once_in_the_same_statements(engine, monkeypatch):
    """The deep query's last level loads the orders of the canonical positions only (the same
    bakeries, so the same one statement), and the response and budget are unchanged."""
    keys: list[int] = []
    load_level = SafeDataLoader.load_level

    async def counted(loader: SafeDataLoader[Any, Any], parents: Any) -> Any:
        keys.append(len(parents))
        return await load_level(loader, parents)

    monkeypatch.setattr(SafeDataLoader, "load_level", counted)
    settings = Settings(max_operation_cost=0)
    executor = Executor(schema, settings)
    with count_statements(engine) as log:
        result = await executor.run(GraphQLRequest(DEEP), AppContext.create(engine, settings))
    assert log.count == 4
    shared_keys = list(keys)
    body = orjson.dumps(result.formatted)
    positions = sum(
        len(supplier["bakeries"])
        for bakery in result.formatted["data"]["bakeries"]
        for supplier in bakery["suppliers"]
    )
    assert shared_keys[-1] < positions / 2, (shared_keys, positions)
    keys.clear()
    monkeypatch.setattr(completion, "SHARE_SUBTREES", False)
    with count_statements(engine) as log:
        unshared = await executor.run(GraphQLRequest(DEEP), AppContext.create(engine, settings))
    assert log.count == 4 and keys[-1] == positions
    assert orjson.dumps(unshared.formatted) == body
    nodes = sum(count_nodes(value) for value in result.formatted["data"].values())
    for limit in (nodes, nodes - 1, nodes - 5, nodes * 3 // 4):
        limited = settings.replace(max_result_nodes=limit)
        answers = []
        for share in (True, False):
            monkeypatch.setattr(completion, "SHARE_SUBTREES", share)
            context = AppContext.create(engine, limited)
            answer = await Executor(schema, limited).run(GraphQLRequest(DEEP), context)
            answers.append(orjson.dumps(answer.formatted))
        assert answers[0] == answers[1]
        assert (b"NODE_LIMIT_EXCEEDED" in answers[0]) == (limit < nodes)


async def test_the_event_loop_gets_its_turns_between_shared_parts(engine, monkeypatch):
    """A marker spends its nodes like a list does, so the builders still give the loop a turn
    (schema/guards.py) when they have worked long enough: here, at every look at the clock."""
    monkeypatch.setattr(guards, "SLICE_SECONDS", 0.0)
    monkeypatch.setattr(guards, "CHECK_EVERY", 8)
    pauses = 0
    pause = guards.NodeBudget.pause

    async def counted(budget: guards.NodeBudget) -> None:
        nonlocal pauses
        pauses += 1
        await pause(budget)

    monkeypatch.setattr(guards.NodeBudget, "pause", counted)
    settings = Settings(max_operation_cost=0)
    executor = Executor(schema, settings)
    result = await executor.run(GraphQLRequest(DEEP), AppContext.create(engine, settings))
    assert "errors" not in result.formatted
    nodes = sum(count_nodes(value) for value in result.formatted["data"].values())
    assert pauses >= nodes // 8 // 4, (pauses, nodes)


@pytest.mark.parametrize("query", GRAPH_QUERIES[:3])
async def test_shares_leave_no_reference_cycles(query):
    """Shares, markers and levels refer to each other; a cycle among them would keep a whole
    level (its sources and dicts) alive after the response, until a full collection. (The
    request's loaders have cycles of their own, through their closures: not looked at here.)"""
    executor = Executor(GRAPH, GRAPH_SETTINGS)
    await executor.run(GraphQLRequest(query), GraphContext())  # plans and caches made
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        result = await executor.run(GraphQLRequest(query), GraphContext())
        assert result.data
        del result
        gc.collect()
        kinds = {type(garbage) for garbage in gc.garbage}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert not kinds & {sharing.Share, sharing.Marker, sharing.Level, sharing.Noted}


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(case=queries(GRAPH._schema), cut=st.floats(0.0, 1.0))
async def test_generated_queries_on_the_graph_share_without_changing_anything(case, cut):
    """Generated queries (aliases, fragments, @skip/@include, variables) over the graph: sharing
    on and off give the same bytes, and the same verdict at a node limit drawn below the size."""
    request = GraphQLRequest(case.query, case.variables)
    outputs = []
    for share in (True, False):
        completion.SHARE_SUBTREES = share
        try:
            result = await Executor(GRAPH, GRAPH_SETTINGS).run(request, GraphContext())
        finally:
            completion.SHARE_SUBTREES = True
        outputs.append(orjson.dumps(result.formatted))
    assert outputs[0] == outputs[1], case
    # Not against graphql-core here: on batch functions that never wait, it leaves the
    # coroutines of a list's other items unawaited when one fails non-null (each reported as
    # "never awaited" when collected, in whatever test runs then). The named cases above and
    # test_compiled_differential compare with it.
    body = orjson.loads(outputs[0])
    nodes = sum(count_nodes(value) for value in (body.get("data") or {}).values())
    if nodes > 1:
        limited = GRAPH_SETTINGS.replace(max_result_nodes=max(1, int(nodes * cut)))
        answers = []
        for share in (True, False):
            completion.SHARE_SUBTREES = share
            try:
                result = await Executor(GRAPH, limited).run(request, GraphContext())
            finally:
                completion.SHARE_SUBTREES = True
            answers.append(orjson.dumps(result.formatted))
        assert answers[0] == answers[1], (case, cut)
