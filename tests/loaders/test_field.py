"""`batch_field` on a small in-memory schema: the contract's rules seen through GraphQL."""

from __future__ import annotations

import asyncio
import gc
import weakref
from dataclasses import dataclass, field
from typing import Any

import strawberry
from strawberry.types import Info

from app.settings import Settings
from loaders.builder import BatchResult, from_sources
from loaders.field import LoaderRegistry, batch_field
from schema.execution import Executor, GraphQLRequest

# Children of parent n: n % 3 of them; parent 4 has two "bosses"; parent 5 is excluded.
EXCLUDED = 5


@dataclass
class Calls:
    kids: list[tuple[list[int], int]] = field(default_factory=list)
    boss: list[list[int]] = field(default_factory=list)
    strict: list[list[int]] = field(default_factory=list)
    fail_once: bool = False
    hold: asyncio.Event | None = None
    boss_entered: asyncio.Event = field(default_factory=asyncio.Event)


CALLS = Calls()


async def kids_of(parents: list[Node], info: Info, limit: int = 10) -> BatchResult[Kid]:
    CALLS.kids.append(([p.pk for p in parents], limit))
    kids = [Kid(name=f"{p.pk}.{i}", parent_pk=p.pk) for p in parents for i in range(p.pk % 3)]
    included = [p for p in parents if p.pk != EXCLUDED]
    # `limit` per parent, as a real query would do in SQL
    per_parent: dict[int, int] = {}
    limited = []
    for kid in kids:
        per_parent[kid.parent_pk] = per_parent.get(kid.parent_pk, 0) + 1
        if per_parent[kid.parent_pk] <= limit:
            limited.append(kid)
    return from_sources(included).with_results(limited, key=lambda kid: kid.parent_pk)


async def boss_of(parents: list[Node]) -> BatchResult[Kid]:
    CALLS.boss.append([p.pk for p in parents])
    CALLS.boss_entered.set()
    if CALLS.hold is not None:
        await CALLS.hold.wait()
    if CALLS.fail_once:
        CALLS.fail_once = False
        raise RuntimeError("the database is on fire")
    bosses = [Kid(name=f"boss{p.pk}", parent_pk=p.pk) for p in parents if p.pk % 2 == 0]
    bosses += [Kid(name="second boss", parent_pk=4)] if any(p.pk == 4 for p in parents) else []
    return from_sources(parents).with_results(bosses, key=lambda kid: kid.parent_pk)


async def strict_kids_of(parents: list[Node]) -> dict[int, list[Kid]]:
    CALLS.strict.append([p.pk for p in parents])
    return {p.pk: [] for p in parents if p.pk != EXCLUDED}


@strawberry.type
class Kid:
    name: str
    parent_pk: strawberry.Private[int]


@strawberry.type
class Node:
    pk: strawberry.Private[int]
    id: int
    kids: list[Kid] | None = batch_field(kids_of)
    boss: Kid | None = batch_field(boss_of)
    strict_kids: list[Kid] = batch_field(strict_kids_of)


@strawberry.type
class Query:
    @strawberry.field
    def nodes(self, count: int = 6) -> list[Node | None]:
        return [Node(pk=i, id=i) for i in range(1, count + 1)]


SCHEMA = strawberry.Schema(query=Query)


@dataclass
class Ctx:
    loaders: LoaderRegistry


async def run(query: str, loaders: LoaderRegistry | None = None) -> dict[str, Any]:
    # `nodes` and `kids` have no cost directives, so each would be costed as a full page (1000):
    # the cost limit is not what these tests are about.
    executor = Executor(SCHEMA, Settings(max_operation_cost=0))
    result = await executor.run(
        GraphQLRequest(query), Ctx(loaders if loaders is not None else LoaderRegistry())
    )
    return result.formatted


def reset() -> None:
    CALLS.kids.clear()
    CALLS.boss.clear()
    CALLS.strict.clear()
    CALLS.fail_once = False
    CALLS.hold = None
    CALLS.boss_entered.clear()


async def test_list_field_is_one_call_for_all_parents_with_empty_lists_and_null_for_excluded():
    reset()
    result = await run("{ nodes { id kids { name } } }")
    assert "errors" not in result
    kids = {node["id"]: node["kids"] for node in result["data"]["nodes"]}
    assert kids[1] == [{"name": "1.0"}]
    assert kids[2] == [{"name": "2.0"}, {"name": "2.1"}]
    assert kids[3] == []
    assert kids[EXCLUDED] is None
    assert CALLS.kids == [([1, 2, 3, 4, 5, 6], 10)]


async def test_aliases_with_different_arguments_are_batched_per_argument_set():
    reset()
    result = await run("{ nodes { id one: kids(limit: 1) { name } all: kids(limit: 5) { name } } }")
    node2 = result["data"]["nodes"][1]
    assert node2["one"] == [{"name": "2.0"}]
    assert node2["all"] == [{"name": "2.0"}, {"name": "2.1"}]
    assert sorted(limit for _, limit in CALLS.kids) == [1, 5]


async def test_two_children_for_a_single_field_is_an_error_on_that_parent_only():
    reset()
    result = await run("{ nodes { id boss { name } } }")
    bosses = {node["id"]: node["boss"] for node in result["data"]["nodes"]}
    assert bosses[4] is None
    assert bosses[2] == {"name": "boss2"} and bosses[6] == {"name": "boss6"}
    assert bosses[1] is None
    assert [error["path"] for error in result["errors"]] == [["nodes", 3, "boss"]]
    assert "at most one" in result["errors"][0]["message"]


async def test_excluded_parent_on_a_non_null_field_is_an_error_on_that_parent_alone():
    result = await run("{ nodes { id strictKids { name } } }")
    assert [error["path"] for error in result["errors"]] == [["nodes", EXCLUDED - 1, "strictKids"]]
    nodes = result["data"]["nodes"]
    assert nodes[EXCLUDED - 1] is None  # null propagates to the nullable list item...
    assert all(node is not None for i, node in enumerate(nodes) if i != EXCLUDED - 1)  # ...only


async def test_a_failing_batch_is_a_field_error_and_the_next_request_works():
    reset()
    CALLS.fail_once = True
    failed = await run("{ nodes { id boss { name } } }")
    assert {tuple(e["path"]) for e in failed["errors"]} == {("nodes", i, "boss") for i in range(6)}
    assert all(e["message"] == "Internal server error" for e in failed["errors"])
    healthy = await run("{ nodes { id boss { name } } }")
    assert healthy["data"]["nodes"][1]["boss"] == {"name": "boss2"}


async def test_loaders_are_shared_through_the_registry_of_one_request():
    reset()
    registry = LoaderRegistry()
    await asyncio.gather(
        run("{ nodes { kids { name } } }", registry),
        run("{ nodes(count: 3) { kids { name } } }", registry),
    )
    # Both operations asked in the same tick: one call, and every parent loaded once.
    assert [sorted(pks) for pks, _ in CALLS.kids] == [[1, 2, 3, 4, 5, 6]]


async def test_cancelled_sibling_fields_do_not_hang_or_poison_the_cache():
    """graphql-core cancels pending siblings when a non-null field fails; a later operation that
    shares the loaders must still get real values."""
    reset()
    registry = LoaderRegistry()
    CALLS.hold = asyncio.Event()  # keep every boss pending while strictKids fails on node 5
    first_task = asyncio.ensure_future(
        run("{ nodes { id strictKids { name } boss { name } } }", registry)
    )
    await CALLS.boss_entered.wait()
    assert CALLS.strict  # dispatched in the same tick as the bosses
    # Yield to the loop (no clock involved) so the non-null error propagates and graphql-core
    # cancels node 5's pending boss; nothing else is runnable meanwhile.
    for _ in range(50):
        await asyncio.sleep(0)
    CALLS.hold.set()
    first = await asyncio.wait_for(first_task, 10)
    assert ["nodes", EXCLUDED - 1, "strictKids"] in [error["path"] for error in first["errors"]]
    second = await asyncio.wait_for(run("{ nodes { id boss { name } } }", registry), 10)
    assert [error["path"] for error in second["errors"]] == [["nodes", 3, "boss"]]  # two bosses
    bosses = [node["boss"] for node in second["data"]["nodes"]]
    assert bosses == [None, {"name": "boss2"}, None, None, None, {"name": "boss6"}]


async def test_closing_the_registry_frees_what_its_loaders_cached_without_the_collector():
    # A loader's batch function holds its first caller's info, hence the context that holds
    # the registry: a cycle. Once the answer is out, `close` must let reference counting free
    # every cached value (a request's rows), for this registry and those `fresh` made.
    reset()
    registry = LoaderRegistry()
    mutation_registry = registry.fresh()
    gc.disable()
    try:
        for loaders in (registry, mutation_registry):
            await run("{ nodes { kids { name } } }", loaders)
        cached = [
            weakref.ref(kid)
            for loaders in (registry, mutation_registry)
            for loader in loaders._loaders.values()
            for future in loader._cache.values()
            for kid in future.result() or ()
        ]
        assert cached and all(ref() is not None for ref in cached)
        registry.close()
        assert registry.count == mutation_registry.count == 0
        assert all(ref() is None for ref in cached)
    finally:
        gc.enable()
